// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "toom",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "toom", targets: ["toom"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // Pure Swift, no I/O: wire codec, timestamps, log-line formats, credentials, command parsing.
        .target(name: "ToomCore"),
        .target(
            name: "ToomServer",
            dependencies: [
                "ToomCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "ToomClient",
            dependencies: [
                "ToomCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
            ]
        ),
        .executableTarget(
            name: "toom",
            dependencies: [
                "ToomCore",
                "ToomServer",
                "ToomClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "ToomCoreTests", dependencies: ["ToomCore"]),
        .testTarget(name: "ToomServerTests", dependencies: ["ToomServer"]),
        .testTarget(name: "ToomEndToEndTests", dependencies: ["ToomCore"]),
    ]
)
