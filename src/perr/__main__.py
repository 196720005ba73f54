from perr.cli import main

main()
