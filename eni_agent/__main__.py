from eni_agent.main import main

main()
