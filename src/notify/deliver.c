/* deliver.c: turns what the engine wants sent into delivery jobs (one per integration of
 * a receiver, "oncall:<schedule>" resolved to whoever is on duty right then) and runs one
 * delivery: HTTP POST (webhook, Slack, Alertmanager) through base's libcurl client, email
 * through libcurl's SMTP (STARTTLS or implicit TLS, auth), exec through posix_spawn with
 * the payload on stdin and a timeout.
 *
 * A job carries everything it needs in its JSON spec, so a queued job survives a restart
 * and a config change unchanged. nfy_deliver runs on a delivery worker thread (module.c)
 * and blocks at most about timeout_ms.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http/http.h"
#include "notify/notify_internal.h"

extern char **environ;

void nfy_job_free(struct nfy_job *j) {
	if (!j)
		return;
	free(j->receiver);
	free(j->integration);
	free(j->target);
	free(j->spec);
	free(j->group_key);
	free(j);
}

static void add_job(struct nfy_job ***jobs, size_t *n, size_t *cap, const char *receiver,
                    const char *integration, const char *target, json_t *spec, const char *key,
                    int64_t now_ms, int64_t expire_ms) {
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		*jobs = ward_xrealloc(*jobs, *cap * sizeof(**jobs));
	}
	struct nfy_job *j = ward_xcalloc(1, sizeof(*j));
	j->receiver = ward_strdup(receiver);
	j->integration = ward_strdup(integration);
	j->target = ward_strdup(target);
	j->spec = json_dumps(spec, JSON_COMPACT);
	json_decref(spec);
	j->group_key = ward_strdup(key);
	j->created_ms = j->next_ms = now_ms;
	j->expires_ms = now_ms + expire_ms;
	j->enqueued_mono_ms = ward_mono_ms();
	(*jobs)[(*n)++] = j;
}

static char *dumps(json_t *j) {
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

static json_t *http_spec(const char *url, json_t *payload) {
	char *b = dumps(payload);
	json_t *s = json_pack("{s:s,s:s}", "url", url, "body", b);
	free(b);
	return s;
}

static json_t *email_spec(const struct nc_smtp *g, const struct nc_email *e, const char *to,
                          const struct nfy_out *o) {
	struct buf subj = BUF_INIT, body = BUF_INIT;
	nfy_payload_email(o, &subj, &body);
	const char *host = e && e->smarthost ? e->smarthost : g->smarthost;
	const char *from = e && e->from ? e->from : g->from;
	const char *user = e && e->auth_username ? e->auth_username : g->auth_username;
	const char *pass = e && e->auth_password ? e->auth_password : g->auth_password;
	int tls = e && e->tls != NFY_TLS_INHERIT ? e->tls : g->tls;
	json_t *s = json_pack("{s:s?,s:s?,s:s,s:s?,s:s?,s:i,s:s,s:s,s:s?,s:b}", "smarthost", host,
	                      "from", from, "to", to, "user", user, "pass", pass, "tls", tls,
	                      "subject", buf_cstr(&subj), "body", buf_cstr(&body), "ca_file",
	                      g->ca_file, "insecure", (int)g->insecure_skip_verify);
	buf_free(&subj);
	buf_free(&body);
	return s;
}

void nfy_out_to_jobs(const struct nfy_cfg *cfg, const struct nfy_out *o, int64_t now_ms,
                     struct nfy_job ***jobs, size_t *njobs, size_t *capjobs) {
	const struct nc_conf *c = cfg->c;
	int64_t exp = c->retry_expire_ms;
	if (ward_has_prefix(o->receiver, "oncall:")) {
		const struct nfy_schedule *s = nfy_cfg_schedule(cfg, o->receiver + 7);
		int who = s ? nfy_oncall_at(s, now_ms) : -1;
		if (who < 0) {
			ward_log(LOG_WARN, "notify: nobody on call", "receiver", o->receiver, NULL);
			return;
		}
		const struct nc_participant *p = &s->c->participants[who];
		if (p->email) {
			struct buf t = BUF_INIT;
			buf_printf(&t, "%s <%s>", p->name, p->email);
			add_job(jobs, njobs, capjobs, o->receiver, "email", buf_cstr(&t),
			        email_spec(&c->smtp, NULL, p->email, o), o->group_key, now_ms, exp);
			buf_free(&t);
		}
		if (p->webhook)
			add_job(jobs, njobs, capjobs, o->receiver, "webhook", p->webhook,
			        http_spec(p->webhook,
			                  nfy_payload_webhook(o, o->receiver, c->external_url, 0)),
			        o->group_key, now_ms, exp);
		return;
	}
	const struct nc_receiver *r = nfy_cfg_receiver(cfg, o->receiver);
	if (!r)
		return;
	for (size_t i = 0; i < r->nwebhooks; i++) {
		if (!o->firing && !r->webhooks[i].send_resolved)
			continue;
		add_job(jobs, njobs, capjobs, r->name, "webhook", r->webhooks[i].url,
		        http_spec(r->webhooks[i].url,
		                  nfy_payload_webhook(o, r->name, c->external_url,
		                                      r->webhooks[i].max_alerts)),
		        o->group_key, now_ms, exp);
	}
	for (size_t i = 0; i < r->nslacks; i++) {
		if (!o->firing && !r->slacks[i].send_resolved)
			continue;
		add_job(jobs, njobs, capjobs, r->name, "slack", "slack",
		        http_spec(r->slacks[i].api_url,
		                  nfy_payload_slack(o, &r->slacks[i], c->external_url)),
		        o->group_key, now_ms, exp);
	}
	for (size_t i = 0; i < r->nemails; i++) {
		if (!o->firing && !r->emails[i].send_resolved)
			continue;
		add_job(jobs, njobs, capjobs, r->name, "email", r->emails[i].to,
		        email_spec(&c->smtp, &r->emails[i], r->emails[i].to, o), o->group_key,
		        now_ms, exp);
	}
	for (size_t i = 0; i < r->nexecs; i++) {
		if (!o->firing && !r->execs[i].send_resolved)
			continue;
		json_t *argv = json_array();
		for (size_t k = 0; k < r->execs[i].ncommand; k++)
			json_array_append_new(argv, json_string(r->execs[i].command[k]));
		char *b = dumps(nfy_payload_webhook(o, r->name, c->external_url, 0));
		json_t *spec = json_pack("{s:o,s:I,s:s}", "command", argv, "timeout_ms",
		                         (json_int_t)r->execs[i].timeout_ms, "body", b);
		free(b);
		add_job(jobs, njobs, capjobs, r->name, "exec", r->execs[i].command[0], spec,
		        o->group_key, now_ms, exp);
	}
	for (size_t i = 0; i < r->nams; i++) {
		struct buf u = BUF_INIT;
		buf_puts(&u, r->ams[i].url);
		while (u.len && u.data[u.len - 1] == '/')
			u.len--;
		buf_puts(&u, "/api/v2/alerts");
		add_job(jobs, njobs, capjobs, r->name, "alertmanager", buf_cstr(&u),
		        http_spec(buf_cstr(&u), nfy_payload_am(o)), o->group_key, now_ms, exp);
		buf_free(&u);
	}
}

/* ---- running one delivery ---- */

static void do_http(struct nfy_job *j, json_t *spec, int64_t timeout_ms) {
	const char *url = json_string_value(json_object_get(spec, "url"));
	const char *body = json_string_value(json_object_get(spec, "body"));
	if (!url || !body) {
		snprintf(j->error, sizeof(j->error), "broken job: no url or body");
		return;
	}
	struct http_client_resp r;
	memset(&r, 0, sizeof(r));
	http_client_do("POST", url, NULL, "application/json", body, strlen(body), timeout_ms, &r);
	if (r.status >= 200 && r.status < 300)
		j->ok = true;
	else if (r.status == 0)
		snprintf(j->error, sizeof(j->error), "%s", r.error[0] ? r.error : "no response");
	else
		snprintf(j->error, sizeof(j->error), "HTTP %ld: %.160s", r.status,
		         r.body.data ? r.body.data : "");
	http_client_resp_free(&r);
}

struct mail_src {
	const char *p;
	size_t left;
};

static size_t mail_read(char *dst, size_t size, size_t nmemb, void *arg) {
	struct mail_src *m = arg;
	size_t n = size * nmemb;
	if (n > m->left)
		n = m->left;
	memcpy(dst, m->p, n);
	m->p += n;
	m->left -= n;
	return n;
}

static void do_email(struct nfy_job *j, json_t *spec, int64_t timeout_ms) {
	const char *host = json_string_value(json_object_get(spec, "smarthost"));
	const char *from = json_string_value(json_object_get(spec, "from"));
	const char *to = json_string_value(json_object_get(spec, "to"));
	const char *user = json_string_value(json_object_get(spec, "user"));
	const char *pass = json_string_value(json_object_get(spec, "pass"));
	int tls = (int)json_integer_value(json_object_get(spec, "tls"));
	if (!host || !to || !from) {
		snprintf(j->error, sizeof(j->error),
		         "no smarthost, from or to: set notify.smtp.smarthost and from");
		return;
	}
	struct buf url = BUF_INIT, msg = BUF_INIT, addr = BUF_INIT;
	buf_printf(&url, "%s://%s", tls == NFY_TLS_TLS ? "smtps" : "smtp", host);
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	uint8_t rnd[8];
	char rh[17];
	ward_random_bytes(rnd, sizeof(rnd));
	ward_hex(rnd, sizeof(rnd), rh);
	const char *subject = json_string_value(json_object_get(spec, "subject"));
	const char *body = json_string_value(json_object_get(spec, "body"));
	buf_printf(&msg,
	           "Date: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@ward>\r\n"
	           "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
	           date, from, to, subject ? subject : "ward", rh);
	for (const char *p = body ? body : ""; *p; p++) {
		if (*p == '\n')
			buf_putc(&msg, '\r');
		buf_putc(&msg, *p);
	}
	buf_printf(&addr, "<%s>", to);
	CURL *c = curl_easy_init();
	struct curl_slist *rcpt = curl_slist_append(NULL, buf_cstr(&addr));
	struct buf fromaddr = BUF_INIT;
	buf_printf(&fromaddr, "<%s>", from);
	struct mail_src src = {msg.data, msg.len};
	curl_easy_setopt(c, CURLOPT_URL, buf_cstr(&url));
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, buf_cstr(&fromaddr));
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, mail_read);
	curl_easy_setopt(c, CURLOPT_READDATA, &src);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	if (tls == NFY_TLS_STARTTLS || tls == NFY_TLS_TLS)
		curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	else if (tls == NFY_TLS_TRY)
		curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
	const char *ca = json_string_value(json_object_get(spec, "ca_file"));
	if (ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	if (json_is_true(json_object_get(spec, "insecure"))) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (user)
		curl_easy_setopt(c, CURLOPT_USERNAME, user);
	if (pass)
		curl_easy_setopt(c, CURLOPT_PASSWORD, pass);
	char eb[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, eb);
	CURLcode rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		j->ok = true;
	else
		snprintf(j->error, sizeof(j->error), "smtp %.80s: %.160s", host,
		         eb[0] ? eb : curl_easy_strerror(rc)); /* bounded: the error field is small */
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(c);
	buf_free(&url);
	buf_free(&msg);
	buf_free(&addr);
	buf_free(&fromaddr);
}

static void env_add(char ***env, size_t *n, const char *prefix, const char *name,
                    const char *value) {
	struct buf b = BUF_INIT;
	buf_puts(&b, prefix);
	for (const char *p = name; *p; p++)
		buf_putc(&b, isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_');
	buf_putc(&b, '=');
	buf_puts(&b, value ? value : "");
	*env = ward_xrealloc(*env, (*n + 2) * sizeof(**env));
	(*env)[(*n)++] = buf_detach(&b);
	(*env)[*n] = NULL;
}

static void do_exec(struct nfy_job *j, json_t *spec, int64_t timeout_ms) {
	json_t *cmd = json_object_get(spec, "command");
	const char *body = json_string_value(json_object_get(spec, "body"));
	json_int_t t = json_integer_value(json_object_get(spec, "timeout_ms"));
	if (t > 0)
		timeout_ms = t;
	size_t argc = json_array_size(cmd);
	if (!argc || !body) {
		snprintf(j->error, sizeof(j->error), "broken job: no command");
		return;
	}
	char **argv = ward_xcalloc(argc + 1, sizeof(*argv));
	for (size_t i = 0; i < argc; i++)
		argv[i] = (char *)json_string_value(json_array_get(cmd, i));
	char **env = NULL;
	size_t nenv = 0;
	const char *path = getenv("PATH");
	env_add(&env, &nenv, "", "PATH", path ? path : "/usr/bin:/bin");
	json_t *p = json_loads(body, 0, NULL);
	env_add(&env, &nenv, "WARD_", "RECEIVER",
	        json_string_value(json_object_get(p, "receiver")));
	env_add(&env, &nenv, "WARD_", "STATUS", json_string_value(json_object_get(p, "status")));
	env_add(&env, &nenv, "WARD_", "GROUP_KEY",
	        json_string_value(json_object_get(p, "groupKey")));
	char cnt[24];
	snprintf(cnt, sizeof(cnt), "%zu", json_array_size(json_object_get(p, "alerts")));
	env_add(&env, &nenv, "WARD_", "ALERT_COUNT", cnt);
	json_t *a0 = json_array_get(json_object_get(p, "alerts"), 0);
	if (a0) {
		const char *k;
		json_t *v;
		env_add(&env, &nenv, "WARD_", "ALERT_FINGERPRINT",
		        json_string_value(json_object_get(a0, "fingerprint")));
		env_add(&env, &nenv, "WARD_", "ALERT_STATUS",
		        json_string_value(json_object_get(a0, "status")));
		env_add(&env, &nenv, "WARD_", "ALERT_STARTS_AT",
		        json_string_value(json_object_get(a0, "startsAt")));
		json_object_foreach(json_object_get(a0, "labels"), k, v)
		        env_add(&env, &nenv, "WARD_LABEL_", k, json_string_value(v));
		json_object_foreach(json_object_get(a0, "annotations"), k, v)
		        env_add(&env, &nenv, "WARD_ANNOTATION_", k, json_string_value(v));
	}
	int in[2] = {-1, -1};
	pid_t pid = -1;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (pipe2(in, O_CLOEXEC) != 0) {
		snprintf(j->error, sizeof(j->error), "pipe: %s", strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, env);
	close(in[0]);
	in[0] = -1;
	if (rc != 0) {
		snprintf(j->error, sizeof(j->error), "%s: %s", argv[0], strerror(rc));
		pid = -1;
		goto out;
	}
	/* feed stdin without blocking forever: the child may not read it */
	int64_t deadline = ward_mono_ms() + timeout_ms;
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	size_t len = strlen(body), off = 0;
	while (off < len && ward_mono_ms() < deadline) {
		struct pollfd pf = {.fd = in[1], .events = POLLOUT};
		if (poll(&pf, 1, 50) <= 0)
			continue;
		ssize_t w = write(in[1], body + off, len - off);
		if (w < 0 && errno != EAGAIN)
			break;
		if (w > 0)
			off += (size_t)w;
	}
	close(in[1]);
	in[1] = -1;
	int status = 0;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			snprintf(j->error, sizeof(j->error), "waitpid: %s", strerror(errno));
			goto out;
		}
		if (ward_mono_ms() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			snprintf(j->error, sizeof(j->error), "%s: killed after the %lld ms timeout",
			         argv[0], (long long)timeout_ms);
			goto out;
		}
		usleep(10000);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		j->ok = true;
	else if (WIFEXITED(status))
		snprintf(j->error, sizeof(j->error), "%s exited with %d", argv[0],
		         WEXITSTATUS(status));
	else
		snprintf(j->error, sizeof(j->error), "%s died of signal %d", argv[0],
		         WTERMSIG(status));
out:
	posix_spawn_file_actions_destroy(&fa);
	if (in[0] >= 0)
		close(in[0]);
	if (in[1] >= 0)
		close(in[1]);
	for (size_t i = 0; i < nenv; i++)
		free(env[i]);
	free(env);
	free(argv);
	json_decref(p);
}

void nfy_deliver(struct nfy_job *j, int64_t timeout_ms) {
	j->ok = false;
	j->error[0] = '\0';
	int64_t t0 = ward_mono_ns();
	json_t *spec = json_loads(j->spec ? j->spec : "", 0, NULL);
	if (!spec)
		snprintf(j->error, sizeof(j->error), "broken job: spec is not JSON");
	else if (ward_streq(j->integration, "email"))
		do_email(j, spec, timeout_ms);
	else if (ward_streq(j->integration, "exec"))
		do_exec(j, spec, timeout_ms);
	else
		do_http(j, spec, timeout_ms);
	json_decref(spec);
	j->seconds = (double)(ward_mono_ns() - t0) / 1e9;
}
