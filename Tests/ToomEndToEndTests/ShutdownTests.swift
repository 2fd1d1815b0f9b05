import Foundation
import Testing
import ToomCore

/// SIGINT and SIGTERM stop the server gracefully at any moment, even right after it started.
@Suite struct ShutdownTests {
    @Test func aSignalRightAfterStartUpStopsTheServer() async throws {
        for signal in [SIGTERM, SIGINT, SIGTERM, SIGINT, SIGTERM, SIGTERM, SIGINT, SIGTERM] {
            let server = try await TestServer()
            server.process.signal(signal)
            #expect(try await server.process.waitForExit() == 0)
            #expect(server.process.stderr.contains("Server stopped"))
        }
    }
}
