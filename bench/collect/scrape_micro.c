/* scrape_micro.c: CPU time of scrape_process alone (no HTTP), for the scrape benchmark's
 * workload: TARGETS targets x SERIES series (the bodies bench/collect/run.sh serves), ROUNDS
 * scrapes of each into a fresh tsdb. Prints CPU microseconds per sample for the first round
 * (every series new) and for the later rounds (the steady state), which the nginx benchmark
 * blends. Built and run by bench/collect/micro.sh; never part of pass/fail tests.
 * Usage: scrape_micro DIR [TARGETS SERIES ROUNDS FSYNC] (FSYNC: always or periodic)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "collect/collect_internal.h"
#include "tsdb/tsdb.h"

static double cpu_s(void) {
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR [TARGETS SERIES ROUNDS always|periodic]\n", argv[0]);
		return 2;
	}
	int nt = argc > 2 ? atoi(argv[2]) : 200, ns = argc > 3 ? atoi(argv[3]) : 1000;
	int rounds = argc > 4 ? atoi(argv[4]) : 8;
	bool always = argc <= 5 || strcmp(argv[5], "periodic") != 0;
	struct tsdb_opts o;
	tsdb_opts_default(&o);
	o.dir = argv[1];
	o.fsync = always ? TSDB_FSYNC_ALWAYS : TSDB_FSYNC_PERIODIC;
	struct ward_err err;
	ward_err_clear(&err);
	struct tsdb *db = tsdb_open(&o, &err);
	if (!db) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	struct buf *bodies = calloc((size_t)nt, sizeof(*bodies));
	struct labels *tl = calloc((size_t)nt, sizeof(*tl));
	struct scrape_series_set **sets = calloc((size_t)nt, sizeof(*sets));
	for (int t = 0; t < nt; t++) {
		buf_puts(&bodies[t], "# HELP bench_requests_total Requests.\n"
		                     "# TYPE bench_requests_total counter\n");
		for (int s = 0; s < ns; s++)
			buf_printf(&bodies[t],
			           "bench_requests_total{path=\"/api/"
			           "%d\",code=\"%d\",shard=\"%d\"} %d\n",
			           s % 50, 200 + s / 50, t, s * 7 + t);
		labels_init(&tl[t]);
		char v[32];
		snprintf(v, sizeof(v), "%d", t);
		labels_set(&tl[t], "t", v);
		labels_set(&tl[t], "job", "bench");
		labels_set(&tl[t], "instance", "127.0.0.1:8080");
		sets[t] = scrape_series_set_new();
	}
	int64_t t0 = 1700000000000LL;
	double first = 0, rest = 0;
	for (int r = 0; r < rounds; r++) {
		double c0 = cpu_s();
		for (int t = 0; t < nt; t++) {
			struct scrape_process_opts po = {.target_labels = &tl[t],
			                                 .honor_timestamps = true,
			                                 .content_type =
			                                         "text/plain; version=0.0.4"};
			struct scrape_result res = {.up = true};
			scrape_process(db, &po, bodies[t].data, bodies[t].len, t0 + r * 15000 + t,
			               0.01, sets[t], &res);
			if (!res.up) {
				fprintf(stderr, "scrape failed: %s\n", res.error);
				return 1;
			}
		}
		double c = cpu_s() - c0;
		if (r == 0)
			first = c;
		else
			rest += c;
	}
	double n = (double)nt * ns;
	printf("targets %d x series %d, %d rounds, fsync %s\n", nt, ns, rounds,
	       always ? "always" : "periodic");
	printf("first round: %.3f CPU-s (%.2f us/sample)\n", first, first / n * 1e6);
	if (rounds > 1)
		printf("later rounds: %.3f CPU-s (%.2f us/sample = CPU-s per million)\n", rest,
		       rest / (n * (rounds - 1)) * 1e6);
	for (int t = 0; t < nt; t++) {
		scrape_series_set_free(sets[t]);
		labels_free(&tl[t]);
		buf_free(&bodies[t]);
	}
	free(sets);
	free(tl);
	free(bodies);
	tsdb_close(db);
	return 0;
}
