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
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ"]),
        .target(
            name: "WorkerPool",
            dependencies: [
                "ZeroMQ",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "WorkerPoolCLI",
            dependencies: [
                "WorkerPool",
                "ZeroMQ",
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
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"]),
        .testTarget(name: "WorkerPoolTests", dependencies: ["WorkerPool"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["ZeroMQ", "WorkerPool", "producer", "worker", "custom-worker"]
        ),
    ]
)
