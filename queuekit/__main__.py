from queuekit.cli import main

main()
