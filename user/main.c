// SPDX-License-Identifier: GPL-2.0
/* tapir: command line, configuration, signals; everything else lives in the daemon. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "inspect.h"
#include "loader.h"
#include "log.h"
#include "tls.h"

static struct tapir_daemon *running;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: tapir [--config FILE] [--web-config FILE] [--listen ADDR:PORT]\n"
		"             [--pin-dir DIR]\n"
		"             [--bpf-variant auto|loop|compat] [--bpf-hooks auto|socket|fexit|syscall|skb]\n"
		"             [-v]\n"
		"       tapir inspect [--config FILE] [--pin-dir DIR]\n"
		"       tapir check [--config FILE] [-v]\n"
		"\n"
		"Watches the HTTP traffic of model-serving containers with eBPF and serves\n"
		"Prometheus metrics on /metrics.\n"
		"\n"
		"  -c, --config FILE     YAML configuration (see README); without it, built-in\n"
		"                        defaults and no deployment rules\n"
		"  -w, --web-config FILE TLS, basic auth and limits of /metrics, in\n"
		"                        node_exporter's web config format (see README);\n"
		"                        instead of the config file's web: section.\n"
		"                        SIGHUP reads it again\n"
		"  -l, --listen ADDR:PORT  address for /metrics; overrides the file's listen\n"
		"  -p, --pin-dir DIR     pin the maps operators inspect here (default\n"
		"                        " TAPIR_PIN_DIR "; \"none\" to pin nothing)\n"
		"  -b, --bpf-variant V   build of the HTTP programs: auto (default: loop where\n"
		"                        the kernel has bpf_loop, else compat), loop, compat\n"
		"  -H, --bpf-hooks H     where sends and receives are watched: auto (default:\n"
		"                        skb where the loop build loads and cgroup v2 takes\n"
		"                        it, else socket where the kernel has\n"
		"                        sock_{send,recv}_length, else fexit where it has BPF\n"
		"                        trampolines, else syscall), skb: the TCP segments\n"
		"                        themselves (loop build, cgroup v2; requests timed\n"
		"                        from their arrival), socket (loop build), fexit,\n"
		"                        syscall\n"
		"  -v, --verbose         debug logging, libbpf's included\n"
		"  -h, --help            this text\n"
		"  -V, --version         version and exit\n"
		"\n"
		"inspect prints the live cgroup -> labels -> in-flight table of the daemon\n"
		"that pinned its maps under DIR (give it the daemon's --config for labels).\n"
		"check loads every BPF program on this kernel without attaching it and\n"
		"prints which load and why not; exit status 1 when a metric family cannot\n"
		"work here.\n"
		"\n"
		"Exit status: 0 on clean shutdown, 1 on a runtime failure, 2 on bad usage or\n"
		"configuration.\n");
}

static void on_signal(int sig)
{
	if (!running)
		return;
	if (sig == SIGHUP)
		tapir_daemon__reload(running);
	else
		tapir_daemon__stop(running);
}

/* --web-config: the web settings come from there; naming them in both places is a mistake. */
static int load_web_config(struct tapir_config *cfg, const char *path)
{
	char err[512];

	if (cfg->web.line) {
		fprintf(stderr,
			"tapir: %s:%d: web settings are given here and in --web-config %s: "
			"keep one\n",
			cfg->path, cfg->web.line, path);
		return -EINVAL;
	}
	tapir_web__clear(&cfg->web);
	if (tapir_web__load(path, &cfg->web, err, sizeof(err))) {
		fprintf(stderr, "tapir: %s\n", err);
		return -EINVAL;
	}
	cfg->web_path = strdup(path);
	return cfg->web_path ? 0 : -ENOMEM;
}

/* The files the web settings name, read and checked now, so that a bad one is a config error. */
static int check_web_files(const struct tapir_config *cfg)
{
	struct tapir_tls tls;
	char err[512];

	if (tapir_tls__load(&cfg->web, &tls, err, sizeof(err))) {
		fprintf(stderr, "tapir: %s\n", err);
		return -EINVAL;
	}
	tapir_tls__clear(&tls);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "web-config", required_argument, NULL, 'w' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "bpf-variant", required_argument, NULL, 'b' },
		{ "bpf-hooks", required_argument, NULL, 'H' },
		{ 0 },
	};
	const char *config = NULL, *listen = NULL, *pin_dir = TAPIR_PIN_DIR, *web = NULL;
	bool inspect = argc > 1 && !strcmp(argv[1], "inspect");
	bool check = argc > 1 && !strcmp(argv[1], "check");
	int variant = TAPIR_BPF_AUTO, hooks = TAPIR_HOOKS_AUTO;
	struct sigaction sa = { .sa_handler = on_signal };
	struct tapir_config *cfg = NULL;
	struct tapir_daemon *d;
	char err[512];
	int c, ret;

	/* One malloc arena for every thread: the endpoint, kubelet and engine threads allocate
	 * little, and an arena each costs about 1 MB of RSS for nothing. */
	mallopt(M_ARENA_MAX, 1);

	if (inspect || check) {
		argv++;
		argc--;
	}
	while ((c = getopt_long(argc, argv, "c:l:w:p:b:H:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (!strcmp(optarg, "auto"))
				variant = TAPIR_BPF_AUTO;
			else if (!strcmp(optarg, "loop"))
				variant = TAPIR_BPF_LOOP;
			else if (!strcmp(optarg, "compat"))
				variant = TAPIR_BPF_COMPAT;
			else {
				fprintf(stderr,
					"tapir: --bpf-variant wants auto, loop or compat, "
					"got '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'H':
			if (!strcmp(optarg, "auto"))
				hooks = TAPIR_HOOKS_AUTO;
			else if (!strcmp(optarg, "socket"))
				hooks = TAPIR_HOOKS_SOCKET;
			else if (!strcmp(optarg, "syscall"))
				hooks = TAPIR_HOOKS_SYSCALL;
			else if (!strcmp(optarg, "fexit"))
				hooks = TAPIR_HOOKS_FEXIT;
			else if (!strcmp(optarg, "skb"))
				hooks = TAPIR_HOOKS_SKB;
			else {
				fprintf(stderr,
					"tapir: --bpf-hooks wants auto, socket, fexit, syscall or skb, "
					"got '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'p': pin_dir = optarg; break;
		case 'c': config = optarg; break;
		case 'l': listen = optarg; break;
		case 'w': web = optarg; break;
		case 'v': tapir_log_set_level(TAPIR_LOG_DEBUG); break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("tapir %s (%s)\n", TAPIR_VERSION, TAPIR_GIT_REV); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (variant == TAPIR_BPF_COMPAT &&
	    (hooks == TAPIR_HOOKS_SOCKET || hooks == TAPIR_HOOKS_SKB)) {
		fprintf(stderr, "tapir: --bpf-hooks %s needs the loop build, not compat\n",
			hooks == TAPIR_HOOKS_SKB ? "skb" : "socket");
		return 2;
	}
	if (optind < argc) {
		fprintf(stderr, "tapir: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (config) {
		ret = tapir_config__load(config, &cfg, err, sizeof(err));
		if (ret) {
			fprintf(stderr, "tapir: %s\n", err);
			return 2;
		}
	} else {
		cfg = tapir_config__new_default();
		if (!cfg)
			return 1;
	}
	if ((web && load_web_config(cfg, web)) || check_web_files(cfg)) {
		tapir_config__free(cfg);
		return 2;
	}
	cfg->bpf_variant = variant;
	cfg->bpf_hooks = hooks;
	if (!strcmp(pin_dir, "none") || !*pin_dir)
		pin_dir = NULL;
	if (check) {
		ret = tapir_loader_check(cfg, stdout);
		tapir_config__free(cfg);
		return ret < 0 ? 1 : ret;
	}
	if (inspect) {
		ret = pin_dir ? tapir_inspect(pin_dir, cfg, stdout) : -EINVAL;
		tapir_config__free(cfg);
		return ret ? 1 : 0;
	}
	if (listen) {
		char *copy = strdup(listen);

		if (!copy || !strchr(listen, ':')) {
			fprintf(stderr, "tapir: --listen wants ADDR:PORT, got '%s'\n", listen);
			free(copy);
			tapir_config__free(cfg);
			return 2;
		}
		free(cfg->listen);
		cfg->listen = copy;
	}

	d = tapir_daemon__new(cfg, pin_dir);
	if (!d) {
		ret = errno;
		pr_err("cannot start: %s", strerror(ret));
		tapir_config__free(cfg);
		return ret == EBUSY ? 2 : 1; /* another daemon owns --pin-dir: a usage error */
	}
	running = d;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	ret = tapir_daemon__run(d);
	running = NULL;
	tapir_daemon__free(d);
	tapir_config__free(cfg);
	pr_info("stopped");
	return ret ? 1 : 0;
}
