// A worker binary with tasks of its own: the README's example, built with the package.
import WorkerPool
import WorkerPoolCLI

struct Resize: Codable, Sendable {
    var path: String
    var width: Int
}

var registry = TaskRegistry.builtin
registry.register("greet") { (name: String, _) in "hello, \(name)" }
registry.register("resize", describe: { (input: Resize) in input.path }) { input, context in
    guard input.width > 0 else { throw TaskError("width must be positive") }
    context.logger.info("resizing \(input.path) on \(context.workerName)")
    return ["path": input.path, "width": "\(input.width)"]
}
WorkerCommand.main(registry: registry)
