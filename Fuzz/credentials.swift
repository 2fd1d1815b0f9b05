/// The credentials.txt parser and `toom passwd`'s rewrites. Every account it accepts has a
/// username and password the spec allows; a hash's text parses back to the same hash; setting
/// a password changes that account only and leaves every other line byte for byte.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = Array(input(data, size))
    let credentials = Credentials(parsing: String(decoding: bytes, as: UTF8.self))
    for (user, password) in credentials.entries {
        check(Text.isValidUsername(user), "username \(user.debugDescription) accepted")
        switch password {
        case .plain(let text):
            check(!text.isEmpty && !Text.containsControlCharacter(text), "password \(text.debugDescription) accepted")
            check(!text.hasPrefix(ScryptHash.prefix), "a hash taken as plaintext")
        case .scrypt(let hash):
            check(ScryptHash.parse(hash.text) == .success(hash), "\(hash.text) does not parse back")
        }
    }
    guard let user = credentials.usernames.first ?? (Text.isValidUsername("fuzz") ? "fuzz" : nil) else { return 0 }
    let hash = "$scrypt$ln=1,r=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA"
    let (edited, created) = CredentialsEdit.setting(hash, for: user, in: bytes)
    let after = Credentials(parsing: String(decoding: edited, as: UTF8.self))
    check(after.password(for: user).map { if case .scrypt = $0 { true } else { false } } == true, "\(user) not set")
    check(created == !credentials.contains(user), "created is \(created) for \(user)")
    for (other, password) in credentials.entries where other != user {
        check(after.password(for: other) == password, "\(other) changed")
    }
    if !created {
        let old = CredentialsEdit.split(bytes), new = CredentialsEdit.split(edited)
        check(old.count == new.count, "line count changed")
        check(zip(old, new).filter { $0.content != $1.content || $0.ending != $1.ending }.count <= 1, "more than one line changed")
    }
    let (hashedAll, _) = CredentialsEdit.hashingAll(in: bytes) { _ in hash }
    let allAfter = Credentials(parsing: String(decoding: hashedAll, as: UTF8.self))
    check(allAfter.entries.values.allSatisfy { if case .scrypt = $0 { true } else { false } }, "a plaintext line left")
    check(Set(allAfter.entries.keys) == Set(credentials.entries.keys), "accounts changed")
    return 0
}
