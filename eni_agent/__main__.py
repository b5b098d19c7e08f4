from eni_agent.cli import main

main()
