import WorkerPoolCLI

ProducerCommand.main()
