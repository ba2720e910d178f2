// SPDX-License-Identifier: GPL-2.0
/* Fetches a kubelet /pods URL with the kubelet client and prints one line per pod. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubelet.h"
#include "log.h"

static void usage(void)
{
	fprintf(stderr, "usage: kubelet_fetch URL [--token-file F] [--ca F] [--insecure] "
			"[--timeout-ms N] [--times N] [-v]\n"
			"prints \"uid name namespace ready ncontainers\" per pod; --times fetches "
			"N times in a row with one client\n");
}

static void print_pods(const struct tapir_kube_pods *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		printf("%s %s %s %d %zu\n", p->pods[i].uid, p->pods[i].name, p->pods[i].namespace_,
		       p->pods[i].ready, p->pods[i].n_containers);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "token-file", required_argument, NULL, 't' },
		{ "ca", required_argument, NULL, 'c' },
		{ "insecure", no_argument, NULL, 'k' },
		{ "timeout-ms", required_argument, NULL, 'T' },
		{ "times", required_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ 0 },
	};
	struct tapir_kubelet_opts o = { 0 };
	struct tapir_kube_pods pods;
	struct tapir_kubelet *k;
	long times = 1, i;
	int opt, ret = 0;

	while ((opt = getopt_long(argc, argv, "t:c:kT:n:v", longopts, NULL)) != -1) {
		switch (opt) {
		case 't': o.token_file = optarg; break;
		case 'c': o.ca_file = optarg; break;
		case 'k': o.insecure = true; break;
		case 'T': o.timeout_ms = strtol(optarg, NULL, 10); break;
		case 'n': times = strtol(optarg, NULL, 10); break;
		case 'v': tapir_log_set_level(TAPIR_LOG_DEBUG); break;
		default: usage(); return 2;
		}
	}
	if (optind != argc - 1 || times < 1) {
		usage();
		return 2;
	}
	o.url = argv[optind];

	k = tapir_kubelet__new(&o);
	if (!k) {
		fprintf(stderr, "kubelet_fetch: %s: %s\n", o.url, strerror(errno));
		return 1;
	}
	for (i = 0; i < times && !ret; i++) {
		ret = tapir_kubelet__fetch(k, &pods);
		if (ret) {
			fprintf(stderr, "kubelet_fetch: fetch %ld of %s: %s\n", i + 1, o.url,
				strerror(-ret));
			break;
		}
		print_pods(&pods);
		fflush(stdout);
		tapir_kube_pods__clear(&pods);
	}
	tapir_kubelet__free(k);
	return ret ? 1 : 0;
}
