import Logging
import PostgresNIO

/// The tables and functions of the PostgreSQL store, created and migrated by the server
/// itself. `toom_schema` holds the version; a database of a newer version is refused.
///
/// Every message and room gets a `feed` number from the one row of `toom_feed`, updated in
/// the committing transaction (`toom_post` stores a batch of a server's waiting messages):
/// the row lock is held until commit, so feed numbers (and with them broadcast numbers, room
/// ids and room message numbers, taken under the same lock) become visible strictly in
/// order, without gaps in the numbers the spec shows. A server that has delivered
/// everything up to feed number f only ever needs `feed > f`.
///
/// Since version 2 a batch of messages commits without waiting for its WAL flush, so the
/// lock is held for the batch's work only and servers no longer take turns through each
/// other's flushes. `toom_post` then runs `toom_flush` in the same call: a synchronous commit
/// of a small write, whose commit record comes after every commit it can see, so the call
/// returns once everything through the batch is on disk, and the flush announces it
/// (`f<feed>\t<epoch>`). The epoch (when the database server started) keeps a flush after a
/// database crash from vouching for commits of before it, which the crash may have lost.
/// Since version 3 the flush's own notification carries the batch's rows
/// (`d<first>\t<last>\t<epoch>`, then a line per row) when they fit: sent after a synchronous
/// commit, it says both what the rows are and that everything through them is on disk.
/// Readers deliver through the announced feed number, from carried rows when they continue
/// what was delivered, else from a query; one that finds rows past it that no flush
/// announced (their server died between its two commits) runs a flush of its own first
/// (`Announcements`).
enum Schema {
    static let version = 3

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
        [
            """
            create table toom_flushes (
                server text not null,
                kind text not null,
                n bigint not null,
                primary key (server, kind))
            """,
            // Which start of the database server this is: a commit that did not wait for the
            // disk counts as durable only through a flush of the same start.
            """
            create function toom_epoch() returns bigint language sql stable as $$
                select (extract(epoch from pg_postmaster_start_time()) * 1000000)::bigint
            $$
            """,
            // A synchronous commit of a small write: its flush covers every commit before it,
            // so every feed number committed when it starts is on disk when it returns, and
            // is announced as such (`f<feed>\t<epoch>`).
            """
            create function toom_flush(p_server text, p_kind text) returns table (o_durable bigint, o_epoch bigint)
            language plpgsql as $$
            begin
                insert into toom_flushes values (p_server, p_kind, 1)
                    on conflict (server, kind) do update set n = toom_flushes.n + 1;
                select last, toom_epoch() into o_durable, o_epoch from toom_feed;
                perform pg_notify('toom', 'f' || o_durable || E'\t' || o_epoch);
                return next;
            end $$
            """,
            // Version 2's `toom_post` (its batch announced twice: its rows at its commit, then
            // its flush) is not created here: every migration goes on to version 3, which
            // creates the procedure as it now is (`create or replace` over a version 2 one).
            """
            create or replace function toom_build_room(p_members text[], p_set text)
            returns table (id bigint, existing boolean) language plpgsql as $$
            declare f bigint; found_id bigint; new_id bigint;
            begin
                -- The feed number only when a room is built: feed numbers have no holes.
                select last + 1 into f from toom_feed for update;
                select r.id into found_id from toom_rooms r where r.member_set = p_set;
                if found_id is not null then
                    return query select found_id, true;
                    return;
                end if;
                update toom_feed set last = f;
                select coalesce(max(r.id), 0) + 1 into new_id from toom_rooms r;
                insert into toom_rooms values (new_id, p_members, p_set, f);
                perform pg_notify('toom', 'f' || f || E'\t' || toom_epoch());
                return query select new_id, false;
            end $$
            """,
            "drop function if exists toom_post_batch(bigint[], bigint[], text[], text[], text[])",
        ],
        [
            // One call per batch: the feed row is locked once, the rows go in with one
            // statement, and that transaction commits without waiting for the disk, which
            // releases the lock; a flush then makes it durable before the call returns.
            // Version 3: a batch is announced once, by its flush's transaction, whose
            // notification is sent only after that commit is on disk: the carried rows are
            // durable as they arrive, and every listening server wakes once per batch, not
            // twice (each notification costs every listener's backend a wake-up). The flush
            // counts itself with an update, not an upsert, once its row exists.
            """
            create or replace procedure toom_post(p_server text, p_rooms bigint[], p_times bigint[], p_ts text[], p_users text[],
                                                  p_messages text[], inout o_numbers bigint[], inout o_last bigint, inout o_epoch bigint)
            language plpgsql as $$
            declare base_feed bigint; batch_rows text; payload text;
            begin
                perform set_config('synchronous_commit', 'off', true);
                select last into base_feed from toom_feed for update;
                with v as (select g.i, p_rooms[g.i] as room from generate_subscripts(p_rooms, 1) as g(i)),
                valid as (
                    select v.i, v.room, base_feed + row_number() over (order by v.i) as feed,
                           row_number() over (partition by v.room order by v.i)
                               + coalesce((select max(m.n) from toom_messages m where m.room = v.room), 0) as n
                    from v where v.room = 0 or exists (select 1 from toom_rooms r where r.id = v.room)),
                stored as (
                    insert into toom_messages
                    select valid.feed, valid.room, valid.n, p_times[valid.i], p_ts[valid.i], p_users[valid.i], p_messages[valid.i]
                    from valid returning feed, room, n, ts, username, message)
                select array_agg(coalesce(valid.n, 0) order by v.i), base_feed + (select count(*) from stored),
                       (select string_agg(concat_ws(E'\t', s.feed, s.room, s.n, s.ts, s.username, s.message), E'\n' order by s.feed)
                        from stored s)
                    into o_numbers, o_last, batch_rows
                from v left join valid on valid.i = v.i;
                update toom_feed set last = o_last;
                o_epoch := toom_epoch();
                commit;
                -- The flush: a small write whose synchronous commit puts every commit before it
                -- on disk, this batch's included, before its notification goes out.
                update toom_flushes set n = n + 1 where server = p_server and kind = 'post';
                if not found then
                    insert into toom_flushes values (p_server, 'post', 1)
                        on conflict (server, kind) do update set n = toom_flushes.n + 1;
                end if;
                -- The rows themselves when they fit: readers need no query. Otherwise only
                -- that everything through the batch is on disk.
                payload := 'd' || (base_feed + 1) || E'\t' || o_last || E'\t' || o_epoch || E'\n' || batch_rows;
                if o_last > base_feed and octet_length(payload) < 7900 then
                    perform pg_notify('toom', payload);
                else
                    perform pg_notify('toom', 'f' || o_last || E'\t' || o_epoch);
                end if;
            end $$
            """,
        ],
    ]

    /// Waits until the database's disk holds its WAL as far as it reaches now, so that every
    /// commit a query that finished before this call could see is durable: batches commit
    /// without waiting for their flush. Some server's flush or PostgreSQL's WAL writer
    /// (within a second) gets there.
    static func waitDurable(_ client: PostgresClient, logger: Logger) async throws {
        var end: String?
        for try await lsn in try await client.query("select pg_current_wal_insert_lsn()::text", logger: logger).decode(String.self) {
            end = lsn
        }
        guard let end else { throw StoreUnavailable(reason: "no WAL position from the database") }
        while true {
            for try await done in try await client.query("select pg_current_wal_flush_lsn() >= \(end)::pg_lsn", logger: logger)
                .decode(Bool.self) where done {
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

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
