/* Row blocks of one kernel call on parallel threads.
 *
 * The rows of a batch are independent recurrences, so a call's time loop can run as `parts` blocks of
 * rows, each with no synchronisation between steps (packed.pxd, row_parts, says when). fr_run_parts
 * runs fn(ctx, p) for p in [0, parts): part 0 on the calling thread, the others on threads created for
 * this call and joined before it returns. Why fresh threads and not a pool (OpenMP): an idle pool
 * busy-waits after its work (libgomp by default for milliseconds), on the very cores the BLAS calls that
 * follow (weight gradients) and the caller's other threads need; creating a thread costs ~10-45 us, and
 * only calls that take milliseconds are split. A thread that cannot be created runs its part on the
 * caller; without POSIX threads every part runs on the caller.
 *
 * Where a new thread starts (Linux): the scheduler places a new thread by the CPUs' recent load, an
 * average that decays over tens of milliseconds, so a core that another process has just used looks
 * busy while it sits idle, and the new thread can land on the caller's core and share it for the whole
 * call. Measured in bench/run.py (LSTM B=64 T=100 H=128 at 2 threads, timed alternately with PyTorch):
 * in 15 of 30 calls both blocks ran on one core for all or most of the call (12.6-16.6 ms against
 * 8.4 ms). So each thread is created allowed only on the caller's other CPUs, and once started takes
 * back the caller's whole CPU set, so the scheduler may move it later as usual.
 */
#ifndef FASTRNN_PARTS_H
#define FASTRNN_PARTS_H

#define FR_MAX_PARTS 16

typedef void (*fr_part_fn)(void *ctx, int part);

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#if defined(__linux__) && defined(_GNU_SOURCE)
#include <sched.h>
#define FR_PARTS_PLACE 1
#else
#define FR_PARTS_PLACE 0
#endif

typedef struct {
    fr_part_fn fn;
    void *ctx;
    int part;
#if FR_PARTS_PLACE
    const cpu_set_t *allowed;   /* the caller's CPUs, taken back once the thread runs; NULL: not placed */
#endif
} fr_part_job;

static inline void *fr_part_main(void *job_)
{
    fr_part_job *job = (fr_part_job *)job_;
#if FR_PARTS_PLACE
    if (job->allowed != NULL)
        pthread_setaffinity_np(pthread_self(), sizeof(cpu_set_t), job->allowed);
#endif
    job->fn(job->ctx, job->part);
    return NULL;
}

/* Thread attributes that start a thread on one of the caller's CPUs other than the one it runs on;
 * 0 when there is no other (then the thread is created without them). */
#if FR_PARTS_PLACE
static inline int fr_parts_elsewhere(pthread_attr_t *attr, cpu_set_t *allowed)
{
    cpu_set_t others;
    int here = sched_getcpu();
    if (here < 0 || sched_getaffinity(0, sizeof(cpu_set_t), allowed) != 0 || !CPU_ISSET(here, allowed))
        return 0;
    others = *allowed;
    CPU_CLR(here, &others);
    if (CPU_COUNT(&others) == 0 || pthread_attr_init(attr) != 0)
        return 0;
    if (pthread_attr_setaffinity_np(attr, sizeof(cpu_set_t), &others) != 0) {
        pthread_attr_destroy(attr);
        return 0;
    }
    return 1;
}
#endif

static inline void fr_run_parts(int parts, fr_part_fn fn, void *ctx)
{
    pthread_t thread[FR_MAX_PARTS];
    fr_part_job job[FR_MAX_PARTS];
    int started[FR_MAX_PARTS];
    int p;
#if FR_PARTS_PLACE
    pthread_attr_t attr;
    cpu_set_t allowed;
    int placed = parts > 1 && fr_parts_elsewhere(&attr, &allowed);
#endif
    for (p = 1; p < parts && p < FR_MAX_PARTS; p++) {
        job[p].fn = fn;
        job[p].ctx = ctx;
        job[p].part = p;
#if FR_PARTS_PLACE
        job[p].allowed = placed ? &allowed : NULL;
        started[p] = pthread_create(&thread[p], placed ? &attr : NULL, fr_part_main, &job[p]) == 0;
        if (!started[p] && placed) {    /* refused with the CPU set: start it where the scheduler likes */
            job[p].allowed = NULL;
            started[p] = pthread_create(&thread[p], NULL, fr_part_main, &job[p]) == 0;
        }
#else
        started[p] = pthread_create(&thread[p], NULL, fr_part_main, &job[p]) == 0;
#endif
        if (!started[p])
            fn(ctx, p);
    }
#if FR_PARTS_PLACE
    if (placed)
        pthread_attr_destroy(&attr);
#endif
    for (; p < parts; p++)      /* not reached: row_parts keeps parts <= FR_MAX_PARTS */
        fn(ctx, p);
    fn(ctx, 0);
    for (p = 1; p < parts && p < FR_MAX_PARTS; p++)
        if (started[p])
            pthread_join(thread[p], NULL);
}
#else
static inline void fr_run_parts(int parts, fr_part_fn fn, void *ctx)
{
    int p;
    for (p = 0; p < parts; p++)
        fn(ctx, p);
}
#endif

#endif
