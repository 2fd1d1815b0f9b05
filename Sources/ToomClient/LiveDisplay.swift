import NIOConcurrencyHelpers
import ToomCore

/// Prints live deliveries (spec §8) as they arrive, each one line of its own, but never
/// inside a reply: while a request waits for its reply, deliveries are held, and they are
/// printed after the reply's lines.
final class LiveDisplay: Sendable {
    private struct State {
        var replyPending = false
        var held: [String] = []
    }

    private let screen: ClientScreen
    private let state = NIOLockedValueBox(State())

    init(screen: ClientScreen) { self.screen = screen }

    /// Called on the event loop for each delivery, in the order the server sent them.
    func deliver(_ frame: ServerFrame) {
        guard let line = ReplyRenderer.delivery(frame) else { return }
        state.withLockedValue { state in
            if state.replyPending {
                state.held.append(line)
            } else {
                screen.say(line)
            }
        }
    }

    /// A request was sent: deliveries wait until its reply has been shown.
    func replyPending() {
        state.withLockedValue { $0.replyPending = true }
    }

    /// The reply has been shown (or needs no lines): prints what was held.
    func replyShown() {
        state.withLockedValue { state in
            state.replyPending = false
            screen.say(state.held)
            state.held = []
        }
    }
}
