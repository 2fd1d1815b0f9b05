import Logging
import PostgresNIO
import ToomCore

/// `toom passwd --store URL`: the accounts of a PostgreSQL store, changed in place. Every
/// server reads them again within seconds (PostgresChatStore's account reload).
public enum PostgresAccounts {
    /// Sets `user`'s password field (a hash line's field, docs/FILES.md); true when the
    /// account is new, which then comes last in `toom export`'s credentials.txt.
    public static func set(_ user: String, field: String, at location: PostgresLocation) async throws -> Bool {
        try await Schema.withClient(location, label: "toom.passwd") { client, logger in
            var created = false
            for try await inserted in try await client.query("""
                insert into toom_accounts (username, password, position)
                values (\(user), \(field), (select coalesce(max(position), 0) + 1 from toom_accounts))
                on conflict (username) do update set password = excluded.password
                returning (xmax = 0)
                """, logger: logger).decode(Bool.self) {
                created = inserted
            }
            return created
        }
    }

    /// Replaces every plaintext password by `hash` of it; how many were replaced. The slow
    /// hashing happens outside any transaction, and a password changed meanwhile is kept.
    public static func hashAll(at location: PostgresLocation, _ hash: (String) throws -> String) async throws -> Int {
        try await Schema.withClient(location, label: "toom.passwd") { client, logger in
            var plain: [(user: String, field: String, password: String)] = []
            for try await (user, field) in try await client.query("select username, password from toom_accounts order by position, username",
                                                                  logger: logger).decode((String, String).self) {
                if case .success(.plain(let password)) = StoredPassword.parse(field: field) { plain.append((user, field, password)) }
            }
            var hashed = 0
            for (user, field, password) in plain {
                let line = try hash(password)
                for try await _ in try await client.query("""
                    update toom_accounts set password = \(line) where username = \(user) and password = \(field) returning 1
                    """, logger: logger) {
                    hashed += 1
                }
            }
            return hashed
        }
    }
}
