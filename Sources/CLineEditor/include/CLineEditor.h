#ifndef TOOM_CLINEEDITOR_H
#define TOOM_CLINEEDITOR_H

#include <stddef.h>

/// What a read returned.
enum {
    LE_END = 0,          /* end of input: Ctrl-D on an empty line, or the terminal went away */
    LE_LINE = 1,         /* a line; *line is malloc'd, without its newline */
    LE_INTERRUPTED = 2,  /* Ctrl-C: the line was discarded */
    LE_WOKEN = 3         /* le_wake was called: the program is stopping */
};

/// Loads libedit (libedit.so.2) at run time and sets up an editor on the terminal.
/// Returns 0, or -1 when libedit cannot be loaded (le_error says why) or an editor is
/// already open. One editor per process: it owns the terminal.
int le_open(const char *program, const char *history_path);

/// Why le_open failed.
const char *le_error(void);

/// Reads one line with editing. Blocks; call from a thread of its own.
int le_read(const char *prompt, char **line);

/// Reads one line without echo and without history (a password). Blocks.
int le_read_secret(const char *prompt, char **line);

/// Prints text (whole lines, each ending in a newline) to fd without disturbing the
/// line being typed: the prompt and the half-typed input are redrawn below it.
void le_print_above(int fd, const char *text, size_t length);

/// Adds a line to the history and saves the history file.
void le_history_add(const char *line);

/// Makes a blocked read (and every later one) return LE_WOKEN.
void le_wake(void);

/// Ends the editor: restores the terminal, saves the history, frees libedit.
void le_close(void);

/// Restores the terminal as it was before le_open, clearing a drawn prompt line.
/// For a process about to exit from another thread while a read is blocked.
void le_restore_for_exit(void);

/// Restores the terminal on SIGTERM, SIGHUP and SIGQUIT, then lets the signal act as usual.
void le_restore_on_fatal_signals(void);

/// Tab completion: called with the text before the cursor. It answers, before it returns,
/// through le_complete_replace and le_complete_list.
typedef void (*le_completer)(const char *before_cursor);
void le_set_completer(le_completer completer);
/// Deletes `delete_count` characters before the cursor and inserts `text`.
void le_complete_replace(int delete_count, const char *text);
/// Shows the candidates (one per line in `list`) below the input line.
void le_complete_list(const char *list);

#endif
