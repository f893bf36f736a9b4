"""Ctrl-C that never crashes the process: KeyboardInterrupt only from Python code.

Python turns SIGINT into KeyboardInterrupt at the next point where it runs signal
handlers. Inside a PyTensor function compiled by numba that point can be a call from the
compiled code back into Python (numba's type dispatch), which does not expect an
exception there: raising KeyboardInterrupt then crashed the process with a segmentation
fault (a few Ctrl-Cs in a hundred during pm.sample_posterior_predictive after nutpie
sampled; the same in plain PyMC). A handler that only takes note never crashed it (1,600
signals). So `handle` takes note while a compiled function runs and raises
KeyboardInterrupt once it has returned, looking again every RETRY_S (SIGALRM).
"""

from __future__ import annotations

import os
import signal
import threading

RETRY_S = 0.02
# Where PyTensor's thunks, which call its compiled functions, are defined.
COMPILED_CALLERS = f"{os.sep}pytensor{os.sep}link{os.sep}"

_pending = False
_alarm = None  # SIGALRM's handler before a Ctrl-C was put off


def install() -> None:
    """Ctrl-C raises KeyboardInterrupt through `handle`, in the main thread. A process
    started with SIGINT ignored (`mlm run fit &` in a script) keeps ignoring it, as
    Python itself does."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return
    signal.signal(signal.SIGINT, handle)


def handle(signum, frame) -> None:
    """SIGINT's handler: KeyboardInterrupt now in Python code, else once it runs again."""
    global _pending, _alarm
    if _in_compiled_code(frame):
        if not _pending:
            _pending, _alarm = True, signal.signal(signal.SIGALRM, _retry)
        signal.setitimer(signal.ITIMER_REAL, RETRY_S)
        return
    settle()
    raise KeyboardInterrupt


def settle() -> None:
    """Forget a Ctrl-C not yet raised (a KeyboardInterrupt is on its way already)."""
    global _pending
    if _pending:
        _pending = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, _alarm)


def _retry(signum, frame) -> None:
    if not _pending:
        return
    if _in_compiled_code(frame):
        signal.setitimer(signal.ITIMER_REAL, RETRY_S)
        return
    settle()
    raise KeyboardInterrupt


def _in_compiled_code(frame) -> bool:
    """Whether the signal came in during a call from one of PyTensor's thunks (the Python
    function that calls a compiled function): in the compiled code, or in Python it calls
    back (numba's type dispatch, its unpickling of constants), which does not expect an
    exception. In the thunk's own code the call has returned, and raising is safe; so it
    is outside thunks (PyTensor compiling a function, nutpie waiting for its draws)."""
    if frame is None or _is_thunk(frame):
        return False
    outer = frame.f_back
    while outer is not None:
        if _is_thunk(outer):
            return True
        outer = outer.f_back
    return False


def _is_thunk(frame) -> bool:
    return frame.f_code.co_name == "thunk" and COMPILED_CALLERS in frame.f_code.co_filename
