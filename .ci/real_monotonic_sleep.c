/* Preloaded before libfaketime by .ci/test-at-dates.
 *
 * The dated runs shift only the wall clock (FAKETIME_DONT_FAKE_MONOTONIC=1): a shifted monotonic
 * clock leaves every timed lock wait hanging, because libfaketime 0.9.10 does not intercept
 * sem_clockwait, which Python's Lock.acquire(timeout=...) uses. But with the monotonic clock left
 * alone, libfaketime's clock_nanosleep still converts absolute monotonic deadlines by the wall
 * clock offset and fails them with EINVAL, and Python's time.sleep is such a sleep. So sleeps on any
 * clock but the wall clock go straight to the kernel here; wall-clock sleeps keep libfaketime's
 * conversion.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_nanosleep_fn)(clockid_t, int, const struct timespec *, struct timespec *);

int clock_nanosleep(clockid_t clock_id, int flags, const struct timespec *request,
                    struct timespec *remain) {
  if (clock_id != CLOCK_REALTIME) {
    /* The raw system call reports failure through errno; clock_nanosleep returns the number. */
    return syscall(SYS_clock_nanosleep, clock_id, flags, request, remain) == 0 ? 0 : errno;
  }
  static clock_nanosleep_fn next;
  if (next == NULL) {
    next = (clock_nanosleep_fn)dlsym(RTLD_NEXT, "clock_nanosleep");
  }
  return next(clock_id, flags, request, remain);
}
