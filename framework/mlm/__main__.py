from mlm.cli import main

main()
