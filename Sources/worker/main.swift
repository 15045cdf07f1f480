import WorkerPool
import WorkerPoolCLI

WorkerCommand.main(registry: .builtin)
