import Foundation
import NIOConcurrencyHelpers

/// Everything the client prints goes through here. While uploads run on a terminal,
/// their progress bars stay the last lines above the prompt: other output is printed
/// in their place and the bars are drawn again below it.
final class ClientScreen: Sendable {
    private struct State {
        var bars: [String] = []
        /// Bar lines directly above the prompt now (none once the user pressed Enter).
        var barsOnScreen = 0
    }

    private let input: LineInput
    let showsProgress: Bool
    private let state = NIOLockedValueBox(State())

    init(input: LineInput, showsProgress: Bool) {
        self.input = input
        self.showsProgress = showsProgress
    }

    func say(_ lines: [String]) {
        guard !lines.isEmpty else { return }
        state.withLockedValue { state in
            guard showsProgress, !state.bars.isEmpty || state.barsOnScreen > 0 else {
                input.printAbove(lines)
                return
            }
            redraw(lines + state.bars, replacing: state.barsOnScreen)
            state.barsOnScreen = state.bars.count
        }
    }

    func say(_ line: String) { say([line]) }

    /// A line for a person at a terminal only: a script reading the output sees nothing new.
    func note(_ line: String) {
        if showsProgress { say(line) }
    }

    /// Replaces the progress bars. Without `draw` (or with no bars) the screen changes
    /// only with the next output.
    func showProgress(_ bars: [String], draw: Bool = true) {
        guard showsProgress else { return }
        // A bar wider than the terminal would wrap onto two lines.
        let width = Self.columns()
        let bars = bars.map { $0.count < width ? $0 : String($0.prefix(max(width - 1, 1))) }
        state.withLockedValue { state in
            state.bars = bars
            guard draw, !bars.isEmpty else { return }
            redraw(bars, replacing: state.barsOnScreen)
            state.barsOnScreen = bars.count
        }
    }

    /// The user entered a line: the bars scrolled up with it and are drawn anew next time.
    func lineEntered() {
        state.withLockedValue { $0.barsOnScreen = 0 }
    }

    /// Moves up over the old bar lines, clears them, and prints `lines` there.
    private func redraw(_ lines: [String], replacing count: Int) {
        var lines = lines
        lines[0] = String(repeating: "\u{1B}[1A\u{1B}[2K", count: count) + lines[0]
        input.printAbove(lines)
    }

    private static func columns() -> Int {
        var size = winsize()
        guard ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }
}
