import Testing
@testable import ToomPostgres

/// Spec §11: a server that dies (kill -9) stops counting its users as online within 15
/// seconds. Its users are listed while its lease holds, and each server's view of who is
/// online is refreshed every second; the end-to-end test of it (ClusterTests) shortens the
/// killed server's lease to 3 s through `toom server`'s hidden --lease-seconds.
@Test func leaseFitsTheSpec() {
    #expect(PostgresChatStore.defaultLease + 1 < 15)
}
