/* Live heap bytes of any program, counted as bench/session_sizes counts global operator new: by
 * malloc_usable_size. Preloaded (LD_PRELOAD), it wraps glibc's allocator; a thread of its own
 * rewrites "live_bytes=N blocks=M" into the file named by LIVE_HEAP_REPORT every 20 ms
 * (coap-server's signal handling gets in the way of a signal). Used so by
 * bench/libcoap_session_memory (libcoap's coap-server-notls).
 * With LIVE_HEAP_COUNT_CALLS=1 the line also counts the allocation calls since the program
 * started, "live_bytes=N blocks=M allocations=A": malloc, calloc, realloc or an aligned
 * allocator (operator new reaches malloc). bench/observe_load reads that file before and after
 * the observers register and around its measured seconds (bench/run_observe_bench), for
 * coap-cpp's server and libcoap's alike. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
extern void __libc_free(void*);

static atomic_long live_bytes, live_blocks, allocations;
static int report_allocations; /* LIVE_HEAP_COUNT_CALLS */

static void* counted(void* p) {
  if (p) {
    atomic_fetch_add(&live_bytes, (long)malloc_usable_size(p));
    atomic_fetch_add(&live_blocks, 1);
    atomic_fetch_add(&allocations, 1);
  }
  return p;
}
static void uncount(void* p) {
  if (p) {
    atomic_fetch_sub(&live_bytes, (long)malloc_usable_size(p));
    atomic_fetch_sub(&live_blocks, 1);
  }
}

void* malloc(size_t n) { return counted(__libc_malloc(n)); }
void* calloc(size_t n, size_t s) { return counted(__libc_calloc(n, s)); }
void* realloc(void* p, size_t n) {
  uncount(p);
  return counted(__libc_realloc(p, n));
}
void* memalign(size_t a, size_t n) { return counted(__libc_memalign(a, n)); }
void* aligned_alloc(size_t a, size_t n) { return counted(__libc_memalign(a, n)); }
int posix_memalign(void** out, size_t a, size_t n) {
  *out = counted(__libc_memalign(a, n));
  return *out ? 0 : 12; /* ENOMEM */
}
void free(void* p) {
  uncount(p);
  __libc_free(p);
}

static size_t format(char* out, long v) {
  char digits[24];
  size_t n = 0, i = 0;
  if (v < 0) {
    out[i++] = '-';
    v = -v;
  }
  do digits[n++] = (char)('0' + v % 10); while ((v /= 10) != 0);
  while (n) out[i++] = digits[--n];
  return i;
}

static void report(const char* path) {
  char line[128];
  size_t n = 0;
  memcpy(line + n, "live_bytes=", 11), n += 11;
  n += format(line + n, atomic_load(&live_bytes));
  memcpy(line + n, " blocks=", 8), n += 8;
  n += format(line + n, atomic_load(&live_blocks));
  if (report_allocations) {
    memcpy(line + n, " allocations=", 13), n += 13;
    n += format(line + n, atomic_load(&allocations));
  }
  line[n++] = '\n';
  int fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, 0644);
  if (fd >= 0) {
    (void)!write(fd, line, n);
    close(fd);
  }
}

static void* reporter(void* path) {
  const struct timespec period = {0, 20 * 1000 * 1000};
  for (;;) {
    report(path);
    nanosleep(&period, NULL);
  }
  return NULL;
}

__attribute__((constructor)) static void install(void) {
  const char* path = getenv("LIVE_HEAP_REPORT");
  const char* count_calls = getenv("LIVE_HEAP_COUNT_CALLS");
  report_allocations = count_calls && *count_calls && strcmp(count_calls, "0") != 0;
  pthread_t thread;
  if (path && pthread_create(&thread, NULL, reporter, (void*)path) == 0) pthread_detach(thread);
}
