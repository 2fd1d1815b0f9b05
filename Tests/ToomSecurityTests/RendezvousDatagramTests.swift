import Testing
import ToomCore
import ToomSecurity

@Suite struct RendezvousDatagramTests {
    let secret = RendezvousSecret(bytes: Array(0..<32))
    let other = RendezvousSecret(bytes: Array(1...32))

    @Test func aRegistrationRoundTripsAndItsAnswerIsNeverLarger() throws {
        let listed = [try #require(TransferCandidate("100.64.1.2:6001")), try #require(TransferCandidate("[2001:db8::2]:6001"))]
        let register = RendezvousDatagram.register(id: 42, number: 7, candidates: listed, secret: secret)
        #expect(register.count == RendezvousDatagram.registerSize)
        let header = try #require(register.withUnsafeBytes { RendezvousDatagram.header($0) })
        #expect(header == .init(kind: .register, id: 42, number: 7))
        #expect(register.withUnsafeBytes { RendezvousDatagram.openRegister($0, secret: secret) } == listed)

        let seen = try #require(TransferCandidate("[2001:db8::99]:40000"))
        let answer = RendezvousDatagram.registered(id: 42, number: 7, observed: seen, secret: secret)
        #expect(answer.count <= RendezvousDatagram.registerSize)
        let opened = try #require(answer.withUnsafeBytes { RendezvousDatagram.openRegistered($0, secret: secret) })
        #expect(opened.number == 7 && opened.observed == seen)
    }

    @Test func anythingAlteredOrUnderAnotherSecretIsRefused() {
        let register = RendezvousDatagram.register(id: 42, number: 7, candidates: [], secret: secret)
        #expect(register.withUnsafeBytes { RendezvousDatagram.openRegister($0, secret: other) } == nil)
        for index in register.indices {
            var altered = register
            altered[index] ^= 0x01
            #expect(altered.withUnsafeBytes { RendezvousDatagram.openRegister($0, secret: secret) } == nil, "byte \(index)")
        }
        #expect(Array(register.prefix(50)).withUnsafeBytes { RendezvousDatagram.openRegister($0, secret: secret) } == nil)
        let answer = RendezvousDatagram.registered(id: 42, number: 7, observed: TransferCandidate("198.18.0.1:1")!,
                                                   secret: secret)
        #expect(answer.withUnsafeBytes { RendezvousDatagram.openRegistered($0, secret: other) } == nil)
        #expect(answer.withUnsafeBytes { RendezvousDatagram.openRegister($0, secret: secret) } == nil, "an answer is no registration")
    }

    @Test func aSecretTravelsAsHex() {
        #expect(RendezvousSecret(hex: secret.hex) == secret)
        #expect(RendezvousSecret(hex: "00") == nil)
    }
}
