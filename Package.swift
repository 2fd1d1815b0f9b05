// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "toom",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "toom", targets: ["toom"]),
        .executable(name: "toom-bench", targets: ["ToomBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // Pure Swift, no I/O: wire codec, timestamps, log-line formats, credentials, command parsing.
        .target(name: "ToomCore"),
        // The chat rules, pure: the time and an input in, actions out. No NIO, no files, no clock.
        .target(name: "ToomChat", dependencies: [
            "ToomCore",
            .product(name: "OrderedCollections", package: "swift-collections"),
        ]),
        // Where the record lives: the file store of spec §3, behind the `ChatStore` interface.
        .target(name: "ToomStore", dependencies: ["ToomCore", "ToomChat"]),
        // The record in PostgreSQL (spec §11): several servers on one database are one chat.
        // Its own target, so the rules and the file store never import a database driver.
        .target(name: "ToomPostgres", dependencies: [
            "ToomCore",
            "ToomChat",
            "ToomStore",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // libedit opened with dlopen at run time: builds without libedit headers, runs without libedit.
        .target(
            name: "CLineEditor",
            linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]
        ),
        .target(name: "LineEditor", dependencies: ["CLineEditor", "ToomCore"]),
        // epoll for the bench's echo reference without NIO.
        .target(name: "CEpoll"),
        // Reading, merging, filtering and following the message logs (toom replay).
        .target(name: "ToomReplay", dependencies: [
            "ToomCore",
            "ToomStore",
            .product(name: "HeapModule", package: "swift-collections"),
        ]),
        // Reliable file transfer over UDP, sender and receiver; knows nothing of chat.
        .target(
            name: "ToomTransfer",
            dependencies: [
                "ToomCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // TLS for both ends (first-byte detection, trust on first use, the server's certificate) and
        // password hashing; the chat code calls it through a few small functions.
        .target(
            name: "ToomSecurity",
            dependencies: [
                "ToomCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "ToomServer",
            dependencies: [
                "ToomCore",
                "ToomChat",
                "ToomStore",
                "ToomSecurity",
                "LineEditor",
                .product(name: "DequeModule", package: "swift-collections"),
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
                "ToomSecurity",
                "LineEditor",
                "ToomTransfer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
            ]
        ),
        .executableTarget(
            name: "toom",
            dependencies: [
                "ToomCore",
                "ToomChat",
                "ToomSecurity",
                "ToomServer",
                "ToomClient",
                "ToomReplay",
                "ToomTransfer",
                "ToomStore",
                "ToomPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Benchmarks against same-run references; not part of the toom binary.
        .executableTarget(
            name: "ToomBench",
            dependencies: [
                "CEpoll",
                "ToomCore",
                "ToomSecurity",
                "ToomTransfer",
                "ToomTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        // Helpers shared by the test targets and toom-bench (a seeded random source, the one
        // process runner, waiting for a condition, network namespaces); not part of toom.
        .target(
            name: "ToomTestSupport",
            dependencies: [.product(name: "Subprocess", package: "swift-subprocess")],
            path: "Sources/ToomTestSupport"
        ),
        .testTarget(name: "ToomCoreTests", dependencies: ["ToomCore", "ToomTestSupport"]),
        .testTarget(name: "ToomChatTests", dependencies: ["ToomChat", "ToomCore"]),
        .testTarget(name: "ToomStoreTests", dependencies: ["ToomStore", "ToomChat", "ToomCore", "ToomTestSupport"]),
        .testTarget(name: "LineEditorTests", dependencies: ["LineEditor"]),
        .testTarget(name: "ToomReplayTests", dependencies: ["ToomReplay", "ToomCore", "ToomStore"]),
        .testTarget(name: "ToomTransferTests", dependencies: ["ToomTransfer", "ToomCore", "ToomTestSupport",
                                                             .product(name: "NIOPosix", package: "swift-nio")]),
        .testTarget(
            name: "ToomSecurityTests",
            dependencies: ["ToomSecurity", "ToomCore", .product(name: "NIOPosix", package: "swift-nio")]
        ),
        .testTarget(name: "ToomClientTests", dependencies: ["ToomClient"]),
        .testTarget(name: "ToomServerTests", dependencies: ["ToomServer", .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(name: "ToomPostgresTests", dependencies: ["ToomPostgres", "ToomChat", "ToomCore"]),
        .testTarget(name: "ToomEndToEndTests", dependencies: ["ToomCore", "ToomSecurity", "ToomTransfer", "ToomTestSupport"]),
    ]
)
