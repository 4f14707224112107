from kagi_gateway.app import main

main()
