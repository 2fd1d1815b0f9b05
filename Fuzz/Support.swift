#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Stops the fuzzer with a report when a property of the code under test does not hold;
/// libFuzzer saves the input that broke it.
func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() {
        // stderr is unbuffered: the line is out before abort().
        fputs("property failed: \(message())\n", stderr)
        abort()
    }
}

/// The fuzzer's input as bytes.
func input(_ data: UnsafeRawPointer, _ size: Int) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: data, count: size)
}
