// epoll for the bench's echo reference without NIO (Glibc's Swift module leaves it out).
#ifdef __linux__
#include <sys/epoll.h>
#endif
