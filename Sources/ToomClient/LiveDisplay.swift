import NIOConcurrencyHelpers
import ToomCore

/// Keeps what the server says unasked in order with the replies. Live deliveries (spec §8)
/// are printed as they arrive, each one line of its own, but never inside or ahead of a
/// reply: while a request waits for its reply they are held, and printed after the reply's
/// lines. A notice that ends the session (shutdown, kick, too slow, login timeout) comes
/// after them too: at once at a prompt, else once the reply has been shown.
final class LiveDisplay: Sendable {
    private struct State {
        var replyPending = false
        var held: [String] = []
        var ending: (@Sendable () -> Void)?
    }

    private let screen: ClientScreen
    private let state = NIOLockedValueBox(State())

    init(screen: ClientScreen) { self.screen = screen }

    /// Called on the event loop for each delivery, in the order the server sent them.
    func deliver(_ frame: ServerFrame) {
        guard let line = ReplyRenderer.delivery(frame) else { return }
        state.withLockedValue { state in
            if state.replyPending || state.ending != nil {
                state.held.append(line)
            } else {
                screen.say(line)
            }
        }
    }

    /// Ends the session with `end` (which does not return), after what came before it.
    func end(_ end: @escaping @Sendable () -> Void) {
        let now = state.withLockedValue { state -> Bool in
            guard state.ending == nil else { return false }
            state.ending = end
            return !state.replyPending
        }
        if now { replyShown() }
    }

    /// A request was sent: deliveries wait until its reply has been shown.
    func replyPending() {
        state.withLockedValue { $0.replyPending = true }
    }

    /// The reply has been shown (or needs no lines): prints what was held, then ends the
    /// session if a notice said so.
    func replyShown() {
        let ending = state.withLockedValue { state in
            state.replyPending = false
            screen.say(state.held)
            state.held = []
            return state.ending
        }
        ending?()
    }

    /// The connection closed before a reply came: the notice that ended the session, if any.
    func endWithoutReply() {
        let ending = state.withLockedValue { state in
            screen.say(state.held)
            state.held = []
            return state.ending
        }
        ending?()
    }
}
