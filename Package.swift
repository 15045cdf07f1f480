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
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CZeroMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"])]
        ),
        // SHA-256 for the journal's task digests.
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
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
                "COpenSSL",
                "PoolSystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Metrics", package: "swift-metrics"),
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
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "FlyingFox", package: "FlyingFox"),
                .product(name: "FlyingSocks", package: "FlyingFox"),
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
        .testTarget(
            name: "WorkerPoolTests",
            dependencies: ["WorkerPool", .product(name: "MetricsTestKit", package: "swift-metrics")]
        ),
        .testTarget(name: "WorkerPoolCLITests", dependencies: ["WorkerPoolCLI", "WorkerPool"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["ZeroMQ", "WorkerPool", "producer", "worker", "custom-worker"]
        ),
    ]
)
