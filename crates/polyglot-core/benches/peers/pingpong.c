/* The floor: two processes ping-pong a 64-byte message over a pair of pipes.
 * Usage: pingpong ROUNDS. Prints the round trip's p50 and p99 in microseconds as JSON. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void full_read(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) exit(2);
        got += (size_t)r;
    }
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 20000;
    int to_child[2], to_parent[2];
    char msg[64];
    memset(msg, 'x', sizeof msg);
    if (pipe(to_child) || pipe(to_parent)) return 1;
    pid_t pid = fork();
    if (pid == 0) {
        char buf[64];
        close(to_child[1]);
        close(to_parent[0]);
        for (;;) {
            ssize_t r = read(to_child[0], buf, sizeof buf);
            if (r <= 0) _exit(0);
            if (write(to_parent[1], buf, (size_t)r) != r) _exit(1);
        }
    }
    close(to_child[0]);
    close(to_parent[1]);
    double *lat = malloc(sizeof(double) * (size_t)rounds);
    for (int i = 0; i < rounds; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (write(to_child[1], msg, sizeof msg) != (ssize_t)sizeof msg) return 1;
        full_read(to_parent[0], msg, sizeof msg);
        clock_gettime(CLOCK_MONOTONIC, &b);
        lat[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
    }
    close(to_child[1]);
    waitpid(pid, NULL, 0);
    qsort(lat, (size_t)rounds, sizeof(double), cmp);
    printf("{\"p50_us\": %.2f, \"p99_us\": %.2f}\n", lat[rounds / 2], lat[rounds * 99 / 100]);
    return 0;
}
