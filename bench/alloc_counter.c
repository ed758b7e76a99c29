/* Counts heap allocations of a process, for bench/allocs-per-request: LD_PRELOAD it, and
 * every 20 ms a thread of its own writes the running count (malloc, calloc, realloc,
 * posix_memalign, aligned_alloc, memalign; operator new goes through malloc) to the file
 * named by ALLOC_COUNTER_FILE, through a rename so a reader never sees it half written.
 * The allocator itself is glibc's, reached with RTLD_NEXT. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_ulong count;
static void* (*real_malloc)(size_t);
static void* (*real_calloc)(size_t, size_t);
static void* (*real_realloc)(void*, size_t);
static int (*real_posix_memalign)(void**, size_t, size_t);
static void* (*real_aligned_alloc)(size_t, size_t);
static void* (*real_memalign)(size_t, size_t);

/* dlsym itself may calloc before real_calloc is known: serve that from a static arena. */
static char arena[4096];
static size_t arenaUsed;
static int resolving;

static void resolve(void) {
  if (real_malloc != NULL || resolving) return;
  resolving = 1;
  real_malloc = dlsym(RTLD_NEXT, "malloc");
  real_calloc = dlsym(RTLD_NEXT, "calloc");
  real_realloc = dlsym(RTLD_NEXT, "realloc");
  real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
  real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
  real_memalign = dlsym(RTLD_NEXT, "memalign");
  resolving = 0;
}

static void* arenaAlloc(size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (arenaUsed + n > sizeof arena) return NULL;
  void* p = arena + arenaUsed;
  arenaUsed += n;
  return p;
}

void* malloc(size_t n) {
  resolve();
  if (real_malloc == NULL) return arenaAlloc(n);
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return real_malloc(n);
}
void* calloc(size_t a, size_t b) {
  resolve();
  if (real_calloc == NULL) {
    void* p = arenaAlloc(a * b);
    if (p != NULL) memset(p, 0, a * b);
    return p;
  }
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return real_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  resolve();
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return real_realloc(p, n);
}
int posix_memalign(void** out, size_t align, size_t n) {
  resolve();
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return real_posix_memalign(out, align, n);
}
void* aligned_alloc(size_t align, size_t n) {
  resolve();
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return real_aligned_alloc(align, n);
}
void* memalign(size_t align, size_t n) {
  resolve();
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return real_memalign(align, n);
}
void free(void* p) {
  if ((char*)p >= arena && (char*)p < arena + sizeof arena) return;
  static void (*real_free)(void*);
  if (real_free == NULL) real_free = dlsym(RTLD_NEXT, "free");
  real_free(p);
}

static void* reporter(void* path) {
  char line[32];
  char staging[4096];
  snprintf(staging, sizeof staging, "%s.tmp", (const char*)path);
  for (;;) {
    int fd = open(staging, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      int n = snprintf(line, sizeof line, "%lu\n", atomic_load(&count));
      int written = write(fd, line, (size_t)n) == n;
      close(fd);
      if (written) rename(staging, (const char*)path); /* else the next round tries again */
    }
    usleep(20000);
  }
  return NULL;
}

__attribute__((constructor)) static void start(void) {
  resolve();
  const char* path = getenv("ALLOC_COUNTER_FILE");
  if (path == NULL) return;
  pthread_t thread;
  pthread_create(&thread, NULL, reporter, (void*)path);
  pthread_detach(thread);
}
