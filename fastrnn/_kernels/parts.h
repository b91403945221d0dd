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
 *
 * A helper (fr_helper_start / fr_helper_join) is one such thread for work that overlaps the caller's own
 * rather than a block of rows: the backward's input side while the time loop runs (input_grads.pxd).
 * Creating it costs the caller ~20-35 us on the 2-core development VM (measured around the call), so it
 * is for work that saves more than that.
 */
#ifndef FASTRNN_PARTS_H
#define FASTRNN_PARTS_H

#define FR_MAX_PARTS 16

typedef void (*fr_part_fn)(void *ctx, int part);

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <sched.h>
#if defined(__linux__) && defined(_GNU_SOURCE)
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

/* Starts fn(ctx, part) on a new thread, placed by attr and allowed (NULL: where the scheduler likes); 0
 * when the thread cannot be created. */
static inline int fr_start_part(pthread_t *thread, fr_part_job *job, fr_part_fn fn, void *ctx, int part,
                                void *attr_, void *allowed_)
{
    job->fn = fn;
    job->ctx = ctx;
    job->part = part;
#if FR_PARTS_PLACE
    job->allowed = (const cpu_set_t *)allowed_;
    if (attr_ != NULL && pthread_create(thread, (pthread_attr_t *)attr_, fr_part_main, job) == 0)
        return 1;
    job->allowed = NULL;    /* refused with the CPU set: start it where the scheduler likes */
#else
    (void)attr_;
    (void)allowed_;
#endif
    return pthread_create(thread, NULL, fr_part_main, job) == 0;
}

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
#else
    int placed = 0;
    void *attr = NULL, *allowed = NULL;
#endif
    for (p = 1; p < parts && p < FR_MAX_PARTS; p++) {
        started[p] = fr_start_part(&thread[p], &job[p], fn, ctx, p, placed ? (void *)&attr : NULL,
                                   placed ? (void *)&allowed : NULL);
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

/* One helper thread for work that overlaps the caller's: fr_helper_start runs fn(ctx, 1) on a thread
 * placed on another of the caller's CPUs, as the row blocks' are; fr_helper_join waits for it, or runs
 * fn(ctx, 1) on the caller when the thread could not be created (so fn must not wait for anything the
 * caller does after fr_helper_join). The two hand work over through a count of finished pieces:
 * fr_progress_publish (the caller: everything written before it is seen by the helper) and
 * fr_progress_wait (the helper). */
typedef struct {
    pthread_t thread;
    fr_part_job job;
    int started;
#if FR_PARTS_PLACE
    cpu_set_t allowed;          /* read by the thread as it starts: lives until the join */
#endif
} fr_helper;

static inline void fr_helper_start(fr_helper *h, fr_part_fn fn, void *ctx)
{
#if FR_PARTS_PLACE
    pthread_attr_t attr;
    int placed = fr_parts_elsewhere(&attr, &h->allowed);
    h->started = fr_start_part(&h->thread, &h->job, fn, ctx, 1, placed ? (void *)&attr : NULL,
                               placed ? (void *)&h->allowed : NULL);
    if (placed)
        pthread_attr_destroy(&attr);
#else
    h->started = fr_start_part(&h->thread, &h->job, fn, ctx, 1, NULL, NULL);
#endif
    if (!h->started) {
        h->job.fn = fn;
        h->job.ctx = ctx;
    }
}

static inline void fr_helper_join(fr_helper *h)
{
    if (h->started)
        pthread_join(h->thread, NULL);
    else
        h->job.fn(h->job.ctx, 1);
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FR_RELAX() _mm_pause()
#else
#define FR_RELAX() ((void)0)
#endif

static inline void fr_progress_publish(int *count, int n)
{
    __atomic_store_n(count, n, __ATOMIC_RELEASE);
}

/* Waits until *count >= n: spinning for a few microseconds, then giving the CPU away between looks (the
 * helper may share a core with the caller when the machine is busy). */
static inline void fr_progress_wait(const int *count, int n)
{
    unsigned spins = 0;
    while (__atomic_load_n(count, __ATOMIC_ACQUIRE) < n) {
        if (spins < 2048) {
            spins++;
            FR_RELAX();
        } else {
            sched_yield();
        }
    }
}
#else
static inline void fr_run_parts(int parts, fr_part_fn fn, void *ctx)
{
    int p;
    for (p = 0; p < parts; p++)
        fn(ctx, p);
}

/* Without threads the helper's work runs on the caller at the join, when the progress is complete. */
typedef struct {
    fr_part_fn fn;
    void *ctx;
} fr_helper;

static inline void fr_helper_start(fr_helper *h, fr_part_fn fn, void *ctx)
{
    h->fn = fn;
    h->ctx = ctx;
}

static inline void fr_helper_join(fr_helper *h)
{
    h->fn(h->ctx, 1);
}

static inline void fr_progress_publish(int *count, int n)
{
    *count = n;
}

static inline void fr_progress_wait(const int *count, int n)
{
    (void)count;
    (void)n;
}
#endif

#endif
