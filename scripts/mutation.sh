#!/usr/bin/env bash
# Mutation testing of mlm's core with mutmut (not in CI: minutes per module).
#
#   bash scripts/mutation.sh fingerprint          one target (see TARGETS below)
#   bash scripts/mutation.sh all                  every target, one after the other
#   bash scripts/mutation.sh fingerprint results  list the surviving mutants again
#   bash scripts/mutation.sh formula run 'mlm.formula.x_parse__mutmut_*'
#                                                 only the mutants named (mutmut's globs)
#
# mutmut imports the package from mutants/src/, so the run happens in a scratch copy laid
# out that way (.mutation/<target>/, git-ignored): src/mlm (from framework/mlm), tests/,
# the example and the template. Each target mutates a few modules and runs only the fast
# unit tests that guard them. `mutmut show NAME` (run inside the scratch folder) shows a
# mutant's diff. docs/testing.md keeps the scores and reviews every survivor.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
python=${MLM_PYTHON_FOR_MUTATION:-$repo/.venv/bin/python}
[ -x "$python" ] || python=$(command -v python3)

# target -> "modules to mutate (globs under src/)|tests that guard them[|pytest -k expression]"
# The formula and codegen targets leave out the tests that go through the CLI or fit a
# model (seconds each; every surviving mutant would run them all).
fast_formula_tests="tests/test_formula.py tests/test_formula_forms.py tests/test_formula_data.py tests/test_formula_families.py tests/test_codegen_likelihoods.py tests/test_formula_mutants.py"
not_through_the_cli="not (through_the_cli or stata_by_a_numeric or generate_model_writes or generate_model_with_priors or new_with_a or new_with_formula or refuses_an_empty_grouping_cell_at_mlm_run or words_stay_text or yes_no_response or zero_inflated)"
# The same without the likelihood checks (PyMC log-densities, ~1 s each), for the modules
# whose text the golden files pin down, and with the checks of hierarchical centring (a
# group term centred on the rest of the model at each level; 7 s), of the partly centred
# form (its model against the centred one; 20 s) and of the centring rule.
fast_codegen_tests="tests/test_formula.py tests/test_formula_forms.py tests/test_formula_data.py tests/test_formula_families.py tests/test_formula_mutants.py tests/test_hierarchical_centring.py tests/test_partial_centring.py tests/test_centring_rule.py"
declare -A TARGETS=(
    [fingerprint]="src/mlm/fingerprint.py|tests/test_fingerprint.py tests/test_stages.py"
    [store]="src/mlm/store/*|tests/test_store.py tests/test_store_cases.py"
    [stage_keys]="src/mlm/stages/base.py src/mlm/stages/data.py|tests/test_stages.py tests/test_data_stage.py"
    [slots]="src/mlm/slots.py|tests/test_stages.py tests/test_slots.py"
    [formula]="src/mlm/formula.py|$fast_formula_tests|$not_through_the_cli"
    [codegen]="src/mlm/codegen/*|$fast_formula_tests|$not_through_the_cli"
    # codegen one module at a time (the whole package is ~3200 mutants: hours on 2 cores).
    [codegen_groups]="src/mlm/codegen/groups.py|$fast_codegen_tests|$not_through_the_cli"
    [codegen_population]="src/mlm/codegen/population.py|$fast_codegen_tests|$not_through_the_cli"
    [codegen_residual]="src/mlm/codegen/residual.py|$fast_codegen_tests|$not_through_the_cli"
    [codegen_body]="src/mlm/codegen/body.py src/mlm/codegen/names.py|$fast_codegen_tests|$not_through_the_cli"
    [codegen_writer]="src/mlm/codegen/writer.py|$fast_codegen_tests|$not_through_the_cli"
    [codegen_columns]="src/mlm/codegen/columns.py|$fast_codegen_tests|$not_through_the_cli"
    [codegen_response]="src/mlm/codegen/response.py src/mlm/codegen/priors.py|$fast_formula_tests|$not_through_the_cli"
)

usage() { echo "usage: bash scripts/mutation.sh all|${!TARGETS[*]} [results]" >&2; exit 2; }
[ $# -ge 1 ] || usage

run_target() {
    local target=$1 action=${2:-run}
    shift $(( $# < 2 ? $# : 2 ))
    local names=("$@")
    local spec=${TARGETS[$target]:-}
    [ -n "$spec" ] || usage
    local modules=${spec%%|*} rest=${spec#*|}
    local tests=${rest%%|*} keyword=""
    [ "$rest" = "$tests" ] || keyword=${rest#*|}
    local work=$repo/.mutation/$target
    if [ "$action" = run ]; then
        rm -rf "$work"
        mkdir -p "$work/src"
        cp -r framework/mlm "$work/src/mlm"
        cp -r tests example_project project_template "$work/"
        find "$work" -name __pycache__ -prune -exec rm -rf {} +
        {
            echo "[tool.mutmut]"
            echo "source_paths = [\"src/\"]"
            echo "also_copy = [\"example_project/\", \"project_template/\"]"
            printf 'only_mutate = ['; printf '"%s", ' $modules; echo ']'
            printf 'pytest_add_cli_args_test_selection = ['; printf '"%s", ' $tests
            [ -z "$keyword" ] || printf '"-k", "%s", ' "$keyword"
            echo ']'
            echo 'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-m", "not slow"]'
            echo ""
            sed -n '/^\[tool.pytest.ini_options\]/,/^\[/p' pyproject.toml | sed '$d'
        } > "$work/pyproject.toml"
        (cd "$work" && env -u PYTHONPATH "$python" -m mutmut run --max-children "${MLM_MUTATION_CHILDREN:-2}" "${names[@]}") || true
    fi
    (cd "$work" && env -u PYTHONPATH "$python" -m mutmut results --all true 2>/dev/null \
        || env -u PYTHONPATH "$python" -m mutmut results)
}

if [ "$1" = all ]; then
    for target in fingerprint store stage_keys slots formula codegen; do
        echo "== $target" >&2
        run_target "$target" "${2:-run}"
    done
else
    run_target "$@"
fi
