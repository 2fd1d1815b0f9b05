import Foundation
import PostgresNIO

/// Where the database is: `postgres://USER[:PASSWORD]@HOST:PORT/DB` (spec §11). The
/// password may instead come from `PGPASSWORD`, so that it need not appear in `ps`.
/// `?sslmode=disable|prefer|require` chooses TLS (default: prefer).
public struct PostgresLocation: Sendable, CustomStringConvertible {
    public let host: String
    public let port: Int
    public let user: String
    let password: String?
    public let database: String
    public let sslMode: String

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    public init(url: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let usage = "expected postgres://USER[:PASSWORD]@HOST:PORT/DB"
        guard let components = URLComponents(string: url),
              let scheme = components.scheme, scheme == "postgres" || scheme == "postgresql"
        else { throw Invalid(description: "Invalid --store: not a postgres:// URL; \(usage)") }
        guard let host = components.host, !host.isEmpty else { throw Invalid(description: "Invalid --store: no host; \(usage)") }
        guard let user = components.user, !user.isEmpty else { throw Invalid(description: "Invalid --store: no user; \(usage)") }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else {
            throw Invalid(description: "Invalid --store: no database name; \(usage)")
        }
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw Invalid(description: "Invalid --store: port \(port); \(usage)") }
        var sslMode = "prefer"
        for item in components.queryItems ?? [] {
            guard item.name == "sslmode", let value = item.value, ["disable", "prefer", "require"].contains(value) else {
                throw Invalid(description: "Invalid --store: unknown parameter \(item.name); only sslmode=disable|prefer|require")
            }
            sslMode = value
        }
        self.host = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        self.port = port
        self.user = user.removingPercentEncoding ?? user
        self.password = components.password.map { $0.removingPercentEncoding ?? $0 } ?? environment["PGPASSWORD"]
        self.database = database.removingPercentEncoding ?? database
        self.sslMode = sslMode
    }

    /// The URL without its password: what logs and messages show.
    public var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }

    var configuration: PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case "disable": tls = .disable
        case "require": tls = .require(.makeClientConfiguration())
        default: tls = .prefer(.makeClientConfiguration())
        }
        var configuration = PostgresClient.Configuration(host: host, port: port, username: user, password: password,
                                                         database: database, tls: tls)
        configuration.options.maximumConnections = 8
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }

    /// The same place for a connection of its own (`PostChannel`), with the same TLS choice
    /// and connect timeout: postgres-nio's pool and a single connection take them as
    /// different types (a TLS configuration or a context, a `Duration` or a `TimeAmount`).
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch sslMode {
        case "disable": tls = .disable
        case "require": tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        default: tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
        var configuration = PostgresConnection.Configuration(host: host, port: port, username: user, password: password,
                                                             database: database, tls: tls)
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }
}
