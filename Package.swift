// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "zmq-worker-pool",
    products: [
        .library(name: "ZeroMQ", targets: ["ZeroMQ"]),
        .library(name: "WorkerPool", targets: ["WorkerPool"]),
        .library(name: "WorkerPoolCLI", targets: ["WorkerPoolCLI"]),
        .executable(name: "producer", targets: ["producer"]),
        .executable(name: "worker", targets: ["worker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.2.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .systemLibrary(
            name: "CZeroMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"])]
        ),
        // Linux glue Swift cannot call itself (prctl, memfd_create, a signal handler and its state).
        .target(name: "CPoolSystem"),
        // How Swift code here calls POSIX: EINTR retries and full writes in one place.
        .target(name: "PoolSystem"),
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ", "PoolSystem"]),
        .target(
            name: "WorkerPool",
            dependencies: [
                "ZeroMQ",
                "CPoolSystem",
                "PoolSystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "WorkerPoolCLI",
            dependencies: [
                "WorkerPool",
                "ZeroMQ",
                "PoolSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "producer", dependencies: ["WorkerPoolCLI"]),
        .executableTarget(name: "worker", dependencies: ["WorkerPoolCLI"]),
        .executableTarget(
            name: "custom-worker", dependencies: ["WorkerPool", "WorkerPoolCLI"], path: "Examples/CustomWorker"),
        .executableTarget(
            name: "bench",
            dependencies: [
                "WorkerPool",
                "PoolSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .testTarget(name: "PoolSystemTests", dependencies: ["CPoolSystem", "PoolSystem"]),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"]),
        .testTarget(name: "WorkerPoolTests", dependencies: ["WorkerPool"]),
        .testTarget(name: "WorkerPoolCLITests", dependencies: ["WorkerPoolCLI", "WorkerPool"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["ZeroMQ", "WorkerPool", "producer", "worker", "custom-worker"]
        ),
    ]
)
