import Logging
import PostgresNIO

/// The tables and functions of the PostgreSQL store, created and migrated by the server
/// itself. `toom_schema` holds the version; a database of a newer version is refused.
///
/// Every message and room gets a `feed` number from the one row of `toom_feed`, updated in
/// the committing transaction (`toom_post_batch` stores a server's waiting messages in one): the row lock is held until commit, so feed numbers (and with
/// them broadcast numbers, room ids and room message numbers, taken under the same lock)
/// become visible strictly in order, without gaps in the numbers the spec shows. A server
/// that has delivered everything up to feed number f only ever needs `feed > f`.
enum Schema {
    static let version = 1

    /// Runs `body`, rethrowing what a transaction's closure threw as itself.
    static func unwrapped<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PostgresTransactionError {
            if let inner = error.closureError { throw inner }
            throw error
        }
    }

    struct TooNew: Error, CustomStringConvertible {
        let found: Int
        var description: String {
            "the database holds toom schema version \(found), newer than this toom understands (\(Schema.version)); use a newer toom"
        }
    }

    /// Statements of each version, in order; version n is reached by running steps[n - 1].
    static let steps: [[PostgresQuery]] = [
        [
            """
            create table toom_accounts (
                username text primary key,
                password text not null,
                position bigint not null default 0)
            """,
            """
            create table toom_feed (only_row boolean primary key default true check (only_row), last bigint not null)
            """,
            "insert into toom_feed (last) values (0)",
            """
            create table toom_messages (
                feed bigint primary key,
                room bigint not null,
                n bigint not null,
                time bigint not null,
                ts text not null,
                username text not null,
                message text not null,
                unique (room, n))
            """,
            "create index toom_messages_time on toom_messages (room, time)",
            """
            create table toom_rooms (
                id bigint primary key,
                members text[] not null,
                member_set text not null unique,
                feed bigint not null unique)
            """,
            """
            create table toom_servers (
                id text primary key,
                lease_until timestamptz not null)
            """,
            """
            create table toom_online (
                username text primary key,
                server text not null,
                session bigint not null,
                address text not null,
                udp_port bigint not null,
                ts text not null,
                since bigint not null)
            """,
            """
            create table toom_blocks (
                username text primary key,
                until timestamptz not null)
            """,
            """
            create function toom_post_batch(p_rooms bigint[], p_times bigint[], p_ts text[], p_users text[], p_messages text[])
            returns table (o_index bigint, o_n bigint) language plpgsql as $$
            declare i int; f bigint; num bigint;
            begin
                for i in 1 .. coalesce(array_length(p_rooms, 1), 0) loop
                    if p_rooms[i] <> 0 and not exists (select 1 from toom_rooms r where r.id = p_rooms[i]) then
                        o_index := i; o_n := 0; return next;
                        continue;
                    end if;
                    update toom_feed set last = last + 1 returning last into f;
                    select coalesce(max(m.n), 0) + 1 into num from toom_messages m where m.room = p_rooms[i];
                    insert into toom_messages values (f, p_rooms[i], num, p_times[i], p_ts[i], p_users[i], p_messages[i]);
                    o_index := i; o_n := num; return next;
                end loop;
                perform pg_notify('toom', 'f');
            end $$
            """,
            """
            create function toom_build_room(p_members text[], p_set text)
            returns table (id bigint, existing boolean) language plpgsql as $$
            declare f bigint; found_id bigint; new_id bigint;
            begin
                update toom_feed set last = last + 1 returning last into f;
                select r.id into found_id from toom_rooms r where r.member_set = p_set;
                if found_id is not null then
                    return query select found_id, true;
                    return;
                end if;
                select coalesce(max(r.id), 0) + 1 into new_id from toom_rooms r;
                insert into toom_rooms values (new_id, p_members, p_set, f);
                perform pg_notify('toom', 'f');
                return query select new_id, false;
            end $$
            """,
            """
            create function toom_login(p_server text, p_session bigint, p_user text, p_address text, p_port bigint,
                                       p_ts text, p_since bigint)
            returns boolean language plpgsql as $$
            begin
                -- A row of this server is a logout not yet committed (its server says the user
                -- is not online there); a row of a server whose lease ran out is a dead server's.
                delete from toom_online o where o.username = p_user and (o.server = p_server or not exists (
                    select 1 from toom_servers s where s.id = o.server and s.lease_until > now()));
                insert into toom_online values (p_user, p_server, p_session, p_address, p_port, p_ts, p_since)
                    on conflict (username) do nothing;
                if not found then return false; end if;
                perform pg_notify('toom', 'o');
                return true;
            end $$
            """,
        ],
    ]

    /// A client for one command (`toom import`, `toom passwd`) on a store whose schema this
    /// toom knows: created or migrated first, as a server would.
    static func withClient<T>(_ location: PostgresLocation, label: String,
                              _ body: (PostgresClient, Logger) async throws -> T) async throws -> T {
        let logger = Logger(label: label) { _ in SwiftLogNoOpLogHandler() }
        let client = PostgresClient(configuration: location.configuration, backgroundLogger: logger)
        let runTask = Task { await client.run() }
        defer { runTask.cancel() }
        do {
            try await migrate(client, logger: logger)
        } catch let error as TooNew {
            throw PostgresChatStore.Refused(description: error.description)
        }
        return try await body(client, logger)
    }

    /// Creates or migrates the schema; several servers starting at once take turns.
    static func migrate(_ client: PostgresClient, logger: Logger) async throws {
        try await unwrapped { try await migrateInTransaction(client, logger: logger) }
    }

    private static func migrateInTransaction(_ client: PostgresClient, logger: Logger) async throws {
        try await client.withTransaction(logger: logger) { connection in
            _ = try await connection.query("select pg_advisory_xact_lock(7735366)", logger: logger)
            _ = try await connection.query("create table if not exists toom_schema (version bigint not null)", logger: logger)
            var current = 0
            for try await (version) in try await connection.query("select version from toom_schema", logger: logger).decode(Int.self) {
                current = max(current, version)
            }
            if current > version { throw TooNew(found: current) }
            guard current < version else { return }
            for step in current..<version {
                for statement in steps[step] { _ = try await connection.query(statement, logger: logger) }
            }
            _ = try await connection.query("delete from toom_schema", logger: logger)
            _ = try await connection.query("insert into toom_schema (version) values (\(version))", logger: logger)
        }
    }
}
