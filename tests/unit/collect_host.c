/* collect_host.c: the host collector (src/collect/host.c) on a fixture procfs written
 * here: node_exporter's names, labels and units (USER_HZ ticks to seconds, kB to bytes,
 * sectors to bytes, ms to seconds, pressure microseconds to seconds), node_exporter's
 * default device filters, and that the text rendering parses back with the exposition
 * parser (also for the real /proc of the test machine). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "collect/collect_internal.h"

static char root[256];

static void put(const char *rel, const char *text) {
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	char *slash = strrchr(path, '/');
	*slash = 0;
	struct ward_err err;
	assert_int_equal(ward_mkdir_p(path, 0700, &err), 0);
	*slash = '/';
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **st) {
	snprintf(root, sizeof(root), "/tmp/collect_host_XXXXXX");
	assert_non_null(mkdtemp(root));
	put("stat", "cpu  100 0 50 1000 5 0 1 0 0 0\n"
	            "cpu0 200 10 100 2000 20 3 4 5 6 7\n"
	            "cpu1 100 0 50 1000 5 0 1 0 0 0\n"
	            "intr 12345 1 2 3\nctxt 999\nbtime 1700000000\nprocesses 4242\n"
	            "procs_running 3\nprocs_blocked 1\n");
	put("loadavg", "0.50 0.25 0.10 2/300 4000\n");
	put("meminfo", "MemTotal:        2048 kB\nActive(anon):     100 kB\n"
	               "HugePages_Total:       0\n");
	put("pressure/cpu", "some avg10=0.00 avg60=0.00 avg300=0.00 total=2500000\n");
	put("pressure/io", "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n"
	                   "full avg10=0.00 avg60=0.00 avg300=0.00 total=500000\n");
	put("diskstats", "   8       0 sda 10 1 80 7 20 2 160 9 0 30 40 0 0 0 0 3 4\n"
	                 "   8       1 sda1 10 1 80 7 20 2 160 9 0 30 40 0 0 0 0 3 4\n"
	                 "   7       0 loop0 1 0 2 0 0 0 0 0 0 0 0\n");
	put("1/mounts", "/dev/root / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n"
	                "tmpfs /tmp tmpfs ro,nosuid 0 0\nsysfs /sys sysfs rw 0 0\n"
	                "overlay /var/lib/docker/x overlay rw 0 0\n");
	put("net/dev", "Inter-|   Receive |  Transmit\n"
	               " face |bytes packets errs drop fifo frame compressed multicast|bytes\n"
	               "    lo: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n"
	               "  eth0: 5 6 7 8 0 0 0 1 9 10 11 12 0 0 0 0\n");
	put("net/netstat", "TcpExt: SyncookiesSent ListenDrops Other\nTcpExt: 1 2 3\n");
	put("net/snmp", "Tcp: RtoAlgorithm ActiveOpens CurrEstab InErrs\nTcp: 1 7 3 4\n");
	put("net/sockstat", "sockets: used 150\nTCP: inuse 5 orphan 0 tw 2 alloc 7 mem 3\n"
	                    "FRAG: inuse 0 memory 0\n");
	put("sys/fs/file-nr", "1024\t0\t9223372036854775807\n");
	put("vmstat", "pgfault 77\nnr_free_pages 5\noom_kill 0\n");
	return 0;
}

static int teardown(void **st) {
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static struct buf text;

static void gather_fixture(void) {
	struct host_opts o;
	host_opts_from_conf(&o, NULL);
	o.procfs = root;
	struct cm_batch b;
	cm_init(&b);
	host_gather(&o, &b);
	buf_reset(&text);
	cm_write_text(&b, &text);
	cm_free(&b);
}

static void has(const char *line) {
	if (!strstr(buf_cstr(&text), line))
		fail_msg("missing line: %s\n--- got:\n%s", line, buf_cstr(&text));
}

static void lacks(const char *s) {
	if (strstr(buf_cstr(&text), s))
		fail_msg("unexpected: %s", s);
}

static void cpu_and_stat_use_node_exporter_names_and_seconds(void **st) {
	gather_fixture();
	long hz = sysconf(_SC_CLK_TCK);
	assert_int_equal(hz, 100); /* the fixture's numbers assume USER_HZ 100 */
	has("node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 2\n");
	has("node_cpu_seconds_total{cpu=\"0\",mode=\"steal\"} 0.05\n");
	has("node_cpu_seconds_total{cpu=\"1\",mode=\"idle\"} 10\n");
	has("node_cpu_guest_seconds_total{cpu=\"0\",mode=\"nice\"} 0.07\n");
	lacks("cpu=\"\"");
	has("node_boot_time_seconds 1.7e+09\n");
	has("node_context_switches_total 999\n");
	has("node_forks_total 4242\n");
	has("node_intr_total 12345\n");
	has("node_procs_running 3\n");
	has("node_procs_blocked 1\n");
	has("node_load1 0.5\n");
	has("node_load15 0.1\n");
	has("# TYPE node_cpu_seconds_total counter\n");
}

static void meminfo_names_and_units(void **st) {
	gather_fixture();
	has("node_memory_MemTotal_bytes 2.097152e+06\n");
	has("node_memory_Active_anon_bytes 102400\n");
	has("node_memory_HugePages_Total 0\n");
}

static void pressure_in_seconds(void **st) {
	gather_fixture();
	has("node_pressure_cpu_waiting_seconds_total 2.5\n");
	has("node_pressure_io_waiting_seconds_total 1\n");
	has("node_pressure_io_stalled_seconds_total 0.5\n");
	lacks("node_pressure_memory");
}

static void diskstats_filter_partitions_and_scale(void **st) {
	gather_fixture();
	has("node_disk_reads_completed_total{device=\"sda\"} 10\n");
	has("node_disk_read_bytes_total{device=\"sda\"} 40960\n");
	has("node_disk_read_time_seconds_total{device=\"sda\"} 0.007\n");
	has("node_disk_written_bytes_total{device=\"sda\"} 81920\n");
	has("node_disk_io_time_seconds_total{device=\"sda\"} 0.03\n");
	has("node_disk_flush_requests_total{device=\"sda\"} 3\n");
	lacks("sda1");
	lacks("loop0");
}

static void filesystems_exclude_pseudo_and_read_ro_option(void **st) {
	gather_fixture();
	has("node_filesystem_size_bytes{device=\"/dev/root\",fstype=\"ext4\",mountpoint=\"/\"}");
	has("node_filesystem_readonly{device=\"tmpfs\",fstype=\"tmpfs\",mountpoint=\"/tmp\"} 1\n");
	has("node_filesystem_readonly{device=\"/dev/root\",fstype=\"ext4\",mountpoint=\"/\"} 0\n");
	lacks("mountpoint=\"/proc\"");
	lacks("mountpoint=\"/sys\"");
	lacks("docker");
}

static void network_netstat_sockstat_filefd(void **st) {
	gather_fixture();
	has("node_network_receive_bytes_total{device=\"lo\"} 1000\n");
	has("node_network_receive_multicast_total{device=\"eth0\"} 1\n");
	has("node_network_transmit_drop_total{device=\"eth0\"} 12\n");
	has("node_netstat_TcpExt_SyncookiesSent 1\n");
	has("node_netstat_TcpExt_ListenDrops 2\n");
	lacks("TcpExt_Other");
	has("node_netstat_Tcp_ActiveOpens 7\n");
	has("node_netstat_Tcp_CurrEstab 3\n");
	has("node_netstat_Tcp_InErrs 4\n");
	lacks("RtoAlgorithm");
	has("node_sockstat_sockets_used 150\n");
	has("node_sockstat_TCP_inuse 5\n");
	has("node_sockstat_TCP_tw 2\n");
	has("node_sockstat_FRAG_memory 0\n");
	lacks("FRAG_mem_bytes");
	has("node_filefd_allocated 1024\n");
	has("node_filefd_maximum 9.223372036854776e+18\n");
	has("node_vmstat_pgfault 77\n");
	has("node_vmstat_oom_kill 0\n");
	lacks("nr_free_pages");
}

static int count(void *arg, const struct labels *ls, int64_t t, bool has_t, double v) {
	(*(size_t *)arg)++;
	return 0;
}

static void rendering_parses_back_for_fixture_and_real_proc(void **st) {
	gather_fixture();
	size_t n = 0;
	struct collect_sample_sink sink = {.sample = count, .arg = &n};
	struct ward_err err;
	ward_err_clear(&err);
	assert_int_equal(collect_parse_exposition(text.data, text.len, COLLECT_FORMAT_TEXT_004,
	                                          NULL, &sink, NULL, &err),
	                 COLLECT_OK);
	assert_true(n > 50);

	struct host_opts o;
	host_opts_from_conf(&o, NULL);
	struct cm_batch b;
	cm_init(&b);
	assert_int_equal(host_gather(&o, &b), 0);
	buf_reset(&text);
	cm_write_text(&b, &text);
	cm_free(&b);
	n = 0;
	int rc = collect_parse_exposition(text.data, text.len, COLLECT_FORMAT_TEXT_004, NULL, &sink,
	                                  NULL, &err);
	if (rc != COLLECT_OK)
		fail_msg("real /proc rendering does not parse: %s", err.msg);
	assert_true(n > 50);
	has("node_uname_info{");
	has("node_time_seconds ");
	buf_free(&text);
}

static void collectors_can_be_chosen(void **st) {
	char *names[] = {"loadavg"};
	struct host_conf hc = {.collectors = names, .ncollectors = 1};
	struct host_opts o;
	host_opts_from_conf(&o, &hc);
	o.procfs = root;
	struct cm_batch b;
	cm_init(&b);
	host_gather(&o, &b);
	buf_reset(&text);
	cm_write_text(&b, &text);
	cm_free(&b);
	has("node_load5 0.25\n");
	lacks("node_cpu");
	buf_free(&text);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(cpu_and_stat_use_node_exporter_names_and_seconds),
	        cmocka_unit_test(meminfo_names_and_units),
	        cmocka_unit_test(pressure_in_seconds),
	        cmocka_unit_test(diskstats_filter_partitions_and_scale),
	        cmocka_unit_test(filesystems_exclude_pseudo_and_read_ro_option),
	        cmocka_unit_test(network_netstat_sockstat_filefd),
	        cmocka_unit_test(rendering_parses_back_for_fixture_and_real_proc),
	        cmocka_unit_test(collectors_can_be_chosen),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);
	buf_free(&text);
	return rc;
}
