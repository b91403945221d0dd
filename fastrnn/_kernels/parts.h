/* Row blocks of one kernel call on parallel threads.
 *
 * The rows of a batch are independent recurrences, so a call's time loop can run as `parts` blocks of
 * rows, each with no synchronisation between steps (packed.pxd, row_parts, says when). fr_run_parts
 * runs fn(ctx, p) for p in [0, parts): part 0 on the calling thread, the others on threads created for
 * this call and joined before it returns. Why fresh threads and not a pool (OpenMP): an idle pool
 * busy-waits after its work (libgomp by default for milliseconds), on the very cores the BLAS calls that
 * follow (weight gradients) and the caller's other threads need; creating a thread costs ~10-30 us, and
 * only calls that take milliseconds are split. A thread that cannot be created runs its part on the
 * caller; without POSIX threads every part runs on the caller.
 */
#ifndef FASTRNN_PARTS_H
#define FASTRNN_PARTS_H

#define FR_MAX_PARTS 16

typedef void (*fr_part_fn)(void *ctx, int part);

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>

typedef struct {
    fr_part_fn fn;
    void *ctx;
    int part;
} fr_part_job;

static inline void *fr_part_main(void *job_)
{
    fr_part_job *job = (fr_part_job *)job_;
    job->fn(job->ctx, job->part);
    return NULL;
}

static inline void fr_run_parts(int parts, fr_part_fn fn, void *ctx)
{
    pthread_t thread[FR_MAX_PARTS];
    fr_part_job job[FR_MAX_PARTS];
    int started[FR_MAX_PARTS];
    int p;
    for (p = 1; p < parts && p < FR_MAX_PARTS; p++) {
        job[p].fn = fn;
        job[p].ctx = ctx;
        job[p].part = p;
        started[p] = pthread_create(&thread[p], NULL, fr_part_main, &job[p]) == 0;
        if (!started[p])
            fn(ctx, p);
    }
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
