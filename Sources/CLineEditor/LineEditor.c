// libedit, opened with dlopen so that building toom needs no libedit headers and a machine
// without libedit still runs it (with the plain reader). The few functions and constants
// used are declared here from histedit.h; el_set and history are variadic, so every call
// to them stays in C.
#define _GNU_SOURCE
#include "CLineEditor.h"

#include <dlfcn.h>
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

typedef struct editline EditLine;
typedef struct history History;
typedef struct { int num; const char *str; } HistEvent;
typedef struct { const char *buffer; const char *cursor; const char *lastchar; } LineInfo;

// histedit.h
enum { EL_PROMPT = 0, EL_EDITOR = 2, EL_SETTY = 8, EL_ADDFN = 9, EL_BIND = 4, EL_HIST = 10, EL_GETCFN = 13, EL_REFRESH = 20 };
enum { H_SETSIZE = 1, H_ENTER = 10, H_LOAD = 17, H_SAVE = 18, H_SETUNIQUE = 20 };
enum { CC_REFRESH = 4, CC_ERROR = 6, CC_REDISPLAY = 8 };

static struct {
    EditLine *(*init)(const char *, FILE *, FILE *, FILE *);
    void (*end)(EditLine *);
    const char *(*gets)(EditLine *, int *);
    int (*set)(EditLine *, int, ...);
    const LineInfo *(*line)(EditLine *);
    int (*insertstr)(EditLine *, const char *);
    void (*deletestr)(EditLine *, int);
    int (*cursor)(EditLine *, int);
    void (*push)(EditLine *, const char *);
    int (*source)(EditLine *, const char *);
    void (*resize)(EditLine *);
    History *(*history_init)(void);
    void (*history_end)(History *);
    int (*history)(History *, HistEvent *, int, ...);
} lib;

enum state { CLOSED, IDLE, EDITING, SECRET };

// Everything below is guarded by `mutex`. The reading thread holds it for the whole of a
// read except while it waits for a key, so printing from other threads happens only then.
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static EditLine *editor;
static History *hist;
static char *history_file;
static char *prompt_text;
static enum state state = CLOSED;
static int interrupted;
static int woken;
static int wake_pipe[2] = { -1, -1 };
static char error_text[512];
static struct termios original;
static volatile sig_atomic_t have_original;
static le_completer completer;
static int completion_delete;
static char *completion_insert;
static char *completion_list;

static void write_all(int fd, const char *text, size_t length) {
    while (length > 0) {
        ssize_t n = write(fd, text, length);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        text += n;
        length -= (size_t)n;
    }
}

static void write_text(int fd, const char *text) { write_all(fd, text, strlen(text)); }

const char *le_error(void) { return error_text; }

static void *load_library(void) {
    static const char *names[] = { "libedit.so.2", "libedit.so", "libedit.3.dylib", "libedit.dylib" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *handle = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (handle) return handle;
    }
    snprintf(error_text, sizeof error_text, "cannot load libedit: %s", dlerror());
    return NULL;
}

static int resolve(void *handle) {
#define RESOLVE(field, symbol)                                                            \
    if (!(*(void **)&lib.field = dlsym(handle, symbol))) {                              \
        snprintf(error_text, sizeof error_text, "libedit has no %s", symbol);           \
        return -1;                                                                        \
    }
    RESOLVE(init, "el_init")
    RESOLVE(end, "el_end")
    RESOLVE(gets, "el_gets")
    RESOLVE(set, "el_set")
    RESOLVE(line, "el_line")
    RESOLVE(insertstr, "el_insertstr")
    RESOLVE(deletestr, "el_deletestr")
    RESOLVE(cursor, "el_cursor")
    RESOLVE(push, "el_push")
    RESOLVE(source, "el_source")
    RESOLVE(resize, "el_resize")
    RESOLVE(history_init, "history_init")
    RESOLVE(history_end, "history_end")
    RESOLVE(history, "history")
#undef RESOLVE
    return 0;
}

// libedit converts between its wide-character buffer and the terminal with the C locale:
// make that UTF-8, whatever the environment says.
static void use_utf8_locale(void) {
    const char *wanted[] = { "", "C.UTF-8", "C.utf8", "en_US.UTF-8" };
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        if (setlocale(LC_CTYPE, wanted[i]) && strcmp(nl_langinfo(CODESET), "UTF-8") == 0) return;
    }
}

static char *prompt_callback(EditLine *e) {
    (void)e;
    return prompt_text ? prompt_text : "";
}

// Waits for one byte of standard input with the mutex released, so other threads can
// print meanwhile. Returns 1 with a byte, 0 at end of input or on wake, -1 on error.
static int wait_for_byte(unsigned char *byte) {
    for (;;) {
        if (woken) return 0;
        struct pollfd fds[2] = { { .fd = 0, .events = POLLIN }, { .fd = wake_pipe[0], .events = POLLIN } };
        pthread_mutex_unlock(&mutex);
        int ready = poll(fds, 2, -1);
        pthread_mutex_lock(&mutex);
        if (ready < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (fds[1].revents) {
            woken = 1;
            return 0;
        }
        if (fds[0].revents) {
            ssize_t n = read(0, byte, 1);
            if (n == 1) return 1;
            if (n == 0) return 0;
            if (errno == EINTR || errno == EAGAIN) continue;
            return -1;
        }
    }
}

// EL_GETCFN: one character, decoded from UTF-8 here so the locale does not matter for input.
static int getc_callback(EditLine *e, wchar_t *out) {
    (void)e;
    unsigned char byte;
    for (;;) {
        int r = wait_for_byte(&byte);
        if (r != 1) return r;
        int need;
        wchar_t value;
        if (byte < 0x80) { *out = byte; return 1; }
        else if (byte >= 0xC2 && byte <= 0xDF) { need = 1; value = byte & 0x1F; }
        else if (byte >= 0xE0 && byte <= 0xEF) { need = 2; value = byte & 0x0F; }
        else if (byte >= 0xF0 && byte <= 0xF4) { need = 3; value = byte & 0x07; }
        else continue;  // not a lead byte: drop it
        int ok = 1;
        while (need-- > 0) {
            r = wait_for_byte(&byte);
            if (r != 1) return r;
            if ((byte & 0xC0) != 0x80) { ok = 0; break; }
            value = (value << 6) | (byte & 0x3F);
        }
        if (ok) { *out = value; return 1; }
    }
}

// Ctrl-C: show "^C" at the end of the line and end it; le_read reports it as interrupted.
static unsigned char interrupt_command(EditLine *e, int ch) {
    (void)ch;
    const LineInfo *info = lib.line(e);
    lib.cursor(e, (int)(info->lastchar - info->cursor));
    lib.insertstr(e, "^C");
    interrupted = 1;
    lib.push(e, "\n");
    return CC_REFRESH;
}

static unsigned char complete_command(EditLine *e, int ch) {
    (void)ch;
    if (!completer) return CC_ERROR;
    const LineInfo *info = lib.line(e);
    char *before = strndup(info->buffer, (size_t)(info->cursor - info->buffer));
    if (!before) return CC_ERROR;
    completion_delete = 0;
    completer(before);
    free(before);
    unsigned char result = CC_ERROR;
    if (completion_insert) {
        if (completion_delete > 0) lib.deletestr(e, completion_delete);
        lib.insertstr(e, completion_insert);
        free(completion_insert);
        completion_insert = NULL;
        result = CC_REFRESH;
    }
    if (completion_list) {
        write_text(1, "\r\n");
        write_text(1, completion_list);
        free(completion_list);
        completion_list = NULL;
        result = CC_REDISPLAY;
    }
    return result;
}

void le_complete_replace(int delete_count, const char *text) {
    free(completion_insert);
    completion_insert = strdup(text);
    completion_delete = delete_count;
}

void le_complete_list(const char *list) {
    free(completion_list);
    completion_list = strdup(list);
}

void le_set_completer(le_completer fn) {
    pthread_mutex_lock(&mutex);
    completer = fn;
    pthread_mutex_unlock(&mutex);
}

int le_open(const char *program, const char *history_path) {
    pthread_mutex_lock(&mutex);
    if (state != CLOSED) {
        snprintf(error_text, sizeof error_text, "a line editor is already open");
        pthread_mutex_unlock(&mutex);
        return -1;
    }
    static void *handle;
    if (!handle) handle = load_library();
    if (!handle || resolve(handle) != 0) {
        pthread_mutex_unlock(&mutex);
        return -1;
    }
    if (wake_pipe[0] < 0 && pipe(wake_pipe) != 0) {
        snprintf(error_text, sizeof error_text, "pipe: %s", strerror(errno));
        pthread_mutex_unlock(&mutex);
        return -1;
    }
    if (tcgetattr(0, &original) == 0) have_original = 1;
    use_utf8_locale();
    editor = lib.init(program, stdin, stdout, stderr);
    if (!editor) {
        snprintf(error_text, sizeof error_text, "el_init failed");
        pthread_mutex_unlock(&mutex);
        return -1;
    }
    lib.set(editor, EL_EDITOR, "emacs");
    lib.source(editor, NULL);  // the user's ~/.editrc, before toom's own bindings
    lib.set(editor, EL_PROMPT, prompt_callback);
    lib.set(editor, EL_GETCFN, getc_callback);
    // Ctrl-C reaches the editor as a key (it clears the line, as in a shell) instead of
    // raising SIGINT, which belongs to the program's graceful shutdown.
    lib.set(editor, EL_SETTY, "-d", "-isig", NULL);
    lib.set(editor, EL_ADDFN, "toom-interrupt", "Discard the line", interrupt_command);
    lib.set(editor, EL_BIND, "^C", "toom-interrupt", NULL);
    lib.set(editor, EL_ADDFN, "toom-complete", "Complete the word", complete_command);
    lib.set(editor, EL_BIND, "^I", "toom-complete", NULL);
    hist = lib.history_init();
    if (hist) {
        HistEvent event;
        lib.history(hist, &event, H_SETSIZE, 1000);
        lib.history(hist, &event, H_SETUNIQUE, 1);
        if (history_path) {
            history_file = strdup(history_path);
            lib.history(hist, &event, H_LOAD, history_file);
        }
        lib.set(editor, EL_HIST, lib.history, hist);
    }
    interrupted = 0;
    woken = 0;
    state = IDLE;
    pthread_mutex_unlock(&mutex);
    return 0;
}

static char *copy_line(const char *text) {
    size_t length = strlen(text);
    while (length > 0 && (text[length - 1] == '\n' || text[length - 1] == '\r')) length--;
    return strndup(text, length);
}

// Takes the mutex for a read and returns -1; or, when no read can start (woken, closed),
// returns the status to report, without the mutex.
static int begin_read(char **line) {
    *line = NULL;
    pthread_mutex_lock(&mutex);
    if (!woken && state == IDLE) return -1;
    int closed = state == CLOSED && !woken;
    pthread_mutex_unlock(&mutex);
    return closed ? LE_END : LE_WOKEN;
}

int le_read(const char *prompt, char **line) {
    int refused = begin_read(line);
    if (refused >= 0) return refused;
    free(prompt_text);
    prompt_text = strdup(prompt);
    interrupted = 0;
    lib.resize(editor);  // EL_SIGNAL is off, so the window size is read here
    state = EDITING;
    int count = 0;
    const char *text = lib.gets(editor, &count);
    state = IDLE;
    int result;
    if (woken) {
        write_text(1, "\r\033[K");
        result = LE_WOKEN;
    } else if (!text || count <= 0) {
        result = LE_END;
    } else if (interrupted) {
        result = LE_INTERRUPTED;
    } else {
        *line = copy_line(text);
        result = *line ? LE_LINE : LE_END;
    }
    pthread_mutex_unlock(&mutex);
    return result;
}

static struct termios secret_saved;
static char *secret_prompt;

int le_read_secret(const char *prompt, char **line) {
    int refused = begin_read(line);
    if (refused >= 0) return refused;
    free(secret_prompt);
    secret_prompt = strdup(prompt);
    write_text(1, prompt);
    int have_terminal = tcgetattr(0, &secret_saved) == 0;
    if (have_terminal) {
        struct termios quiet = secret_saved;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ICANON | ISIG);
        quiet.c_cc[VMIN] = 1;
        quiet.c_cc[VTIME] = 0;
        tcsetattr(0, TCSADRAIN, &quiet);
    }
    state = SECRET;
    size_t capacity = 64, length = 0;
    char *buffer = calloc(capacity, 1);
    int result = buffer ? LE_LINE : LE_END;
    while (buffer) {
        unsigned char byte;
        int r = wait_for_byte(&byte);
        if (r != 1) { result = woken ? LE_WOKEN : LE_END; break; }
        if (byte == '\r' || byte == '\n') break;
        if (byte == 3) { result = LE_INTERRUPTED; break; }
        if (byte == 4) {
            if (length == 0) { result = LE_END; break; }
            continue;
        }
        if (byte == 0x7F || byte == 8) {  // erase one UTF-8 character
            while (length > 0 && (buffer[length - 1] & 0xC0) == 0x80) length--;
            if (length > 0) length--;
            continue;
        }
        if (byte == 0x15) { length = 0; continue; }  // Ctrl-U
        if (byte < 0x20) continue;
        if (length + 1 >= capacity) {
            char *bigger = calloc(capacity * 2, 1);
            if (!bigger) { result = LE_END; break; }
            memcpy(bigger, buffer, length);
            explicit_bzero(buffer, capacity);
            free(buffer);
            buffer = bigger;
            capacity *= 2;
        }
        buffer[length++] = (char)byte;
    }
    if (have_terminal) tcsetattr(0, TCSADRAIN, &secret_saved);
    state = IDLE;
    write_text(1, result == LE_INTERRUPTED ? "^C\n" : "\n");
    if (buffer) {
        if (result == LE_LINE) *line = strndup(buffer, length);
        explicit_bzero(buffer, capacity);
        free(buffer);
    }
    pthread_mutex_unlock(&mutex);
    return result;
}

void le_print_above(int fd, const char *text, size_t length) {
    pthread_mutex_lock(&mutex);
    switch (state) {
    case EDITING:
        write_text(1, "\r\033[K");
        write_all(fd, text, length);
        lib.set(editor, EL_REFRESH);
        break;
    case SECRET:
        write_text(1, "\r\033[K");
        write_all(fd, text, length);
        write_text(1, secret_prompt);
        break;
    default:
        write_all(fd, text, length);
    }
    pthread_mutex_unlock(&mutex);
}

static void save_history(void) {
    if (!hist || !history_file) return;
    HistEvent event;
    mode_t old = umask(077);
    lib.history(hist, &event, H_SAVE, history_file);
    umask(old);
}

void le_history_add(const char *line) {
    pthread_mutex_lock(&mutex);
    if (hist && state != CLOSED) {
        HistEvent event;
        lib.history(hist, &event, H_ENTER, line);
        save_history();
    }
    pthread_mutex_unlock(&mutex);
}

void le_wake(void) {
    if (wake_pipe[1] >= 0) write_all(wake_pipe[1], "x", 1);
}

void le_close(void) {
    pthread_mutex_lock(&mutex);
    if (state != CLOSED) {
        save_history();
        lib.end(editor);
        editor = NULL;
        if (hist) lib.history_end(hist);
        hist = NULL;
        free(history_file);
        history_file = NULL;
        if (have_original) tcsetattr(0, TCSADRAIN, &original);
        state = CLOSED;
    }
    pthread_mutex_unlock(&mutex);
}

void le_restore_for_exit(void) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += 200 * 1000 * 1000;
    if (deadline.tv_nsec >= 1000000000L) { deadline.tv_sec += 1; deadline.tv_nsec -= 1000000000L; }
    // The process is about to exit: keep the mutex so nothing draws the prompt again.
    pthread_mutex_timedlock(&mutex, &deadline);
    if (state == EDITING || state == SECRET) write_text(1, "\r\033[K");
    if (have_original) tcsetattr(0, TCSADRAIN, &original);
    state = CLOSED;
}

static void restore_and_raise(int signal_number) {
    if (have_original) tcsetattr(0, TCSANOW, &original);
    write(1, "\r\n", 2);
    signal(signal_number, SIG_DFL);
    raise(signal_number);
}

void le_restore_on_fatal_signals(void) {
    signal(SIGTERM, restore_and_raise);
    signal(SIGHUP, restore_and_raise);
    signal(SIGQUIT, restore_and_raise);
}
