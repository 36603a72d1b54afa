/*
 * LD_PRELOAD'ed into stor by test/errno.test.ts: the runtime's own calls that succeed leave errno
 * set (EAGAIN), as any of the runtime's work may between a failed call of stor's and its read of
 * errno. A correct program reads errno only after a call that failed, so only a read with work on
 * the way can see it. On load it creates the file STOR_TEST_CLOBBER_MARK names, to show it ran.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

__attribute__((constructor)) static void mark(void) {
  const char *path = getenv("STOR_TEST_CLOBBER_MARK");
  if (path) close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
}

/* The real function `name`, found once. */
#define REAL(type, name, args) \
  static type(*real) args;     \
  if (!real) real = (type(*) args)dlsym(RTLD_NEXT, name)

void *dlopen(const char *file, int mode) {
  REAL(void *, "dlopen", (const char *, int));
  void *handle = real(file, mode);
  if (handle) errno = EAGAIN;
  return handle;
}

void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset) {
  REAL(void *, "mmap", (void *, size_t, int, int, int, off_t));
  void *at = real(addr, length, prot, flags, fd, offset);
  if (at != MAP_FAILED) errno = EAGAIN;
  return at;
}

int munmap(void *addr, size_t length) {
  REAL(int, "munmap", (void *, size_t));
  int r = real(addr, length);
  if (r == 0) errno = EAGAIN;
  return r;
}

int mprotect(void *addr, size_t length, int prot) {
  REAL(int, "mprotect", (void *, size_t, int));
  int r = real(addr, length, prot);
  if (r == 0) errno = EAGAIN;
  return r;
}

int madvise(void *addr, size_t length, int advice) {
  REAL(int, "madvise", (void *, size_t, int));
  int r = real(addr, length, advice);
  if (r == 0) errno = EAGAIN;
  return r;
}
