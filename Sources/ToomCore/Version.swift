/// toom's version: what `toom --version` prints. Change it here only.
public enum ToomVersion {
    public static let current = "0.9.0"
}
