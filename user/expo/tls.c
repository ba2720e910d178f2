// SPDX-License-Identifier: GPL-2.0
/*
 * TLS material of the /metrics endpoint. libmicrohttpd does the handshakes; what it leaves to the
 * application is checking the files before a (re)start, so that a bad file at SIGHUP keeps the
 * old settings, and verifying client certificates, which it requests but does not judge.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "tls.h"

#define PEM_MAX_BYTES (1 << 20)

static int read_pem(const char *path, char **out)
{
	struct stat st;
	ssize_t got;
	size_t n = 0;
	char *buf;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = fstat(fd, &st)		   ? -errno
	      : !S_ISREG(st.st_mode)	   ? -EINVAL
	      : st.st_size > PEM_MAX_BYTES ? -EFBIG
					   : 0;
	if (err) {
		close(fd);
		return err;
	}
	buf = malloc(st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (n < (size_t)st.st_size) {
		got = read(fd, buf + n, st.st_size - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		n += got;
	}
	close(fd);
	buf[n] = '\0';
	*out = buf;
	return 0;
}

static int file_err(const struct tapir_web *w, int line, const char *what, const char *path,
		    const char *why, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s:%d: %s %s: %s", w->source ? w->source : "web", line, what, path,
		 why);
	return -EINVAL;
}

int tapir_tls__load(const struct tapir_web *w, struct tapir_tls *t, char *err, size_t errlen)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_datum_t cert, key, ca;
	gnutls_priority_t prio;
	const char *errpos;
	int ret;

	memset(t, 0, sizeof(*t));
	if (!w->cert_file)
		return 0;
	t->client_auth = w->client_auth;
	t->priorities = w->min_tls >= 13 ? "NORMAL:-VERS-ALL:+VERS-TLS1.3"
					 : "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
	if ((ret = read_pem(w->cert_file, &t->cert))) {
		file_err(w, w->cert_line, "cert_file", w->cert_file, strerror(-ret), err, errlen);
		goto fail;
	}
	if ((ret = read_pem(w->key_file, &t->key))) {
		file_err(w, w->key_line, "key_file", w->key_file, strerror(-ret), err, errlen);
		goto fail;
	}
	if (w->client_ca_file && (ret = read_pem(w->client_ca_file, &t->ca))) {
		file_err(w, w->ca_line, "client_ca_file", w->client_ca_file, strerror(-ret), err,
			 errlen);
		goto fail;
	}
	if (gnutls_certificate_allocate_credentials(&cred)) {
		ret = -ENOMEM;
		snprintf(err, errlen, "cannot allocate TLS credentials");
		goto fail;
	}
	cert = (gnutls_datum_t){ (unsigned char *)t->cert, strlen(t->cert) };
	key = (gnutls_datum_t){ (unsigned char *)t->key, strlen(t->key) };
	ret = gnutls_certificate_set_x509_key_mem2(cred, &cert, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (ret < 0) {
		ret = file_err(w, w->key_line, "key_file", w->key_file, gnutls_strerror(ret), err,
			       errlen);
		goto fail;
	}
	if (t->ca) {
		ca = (gnutls_datum_t){ (unsigned char *)t->ca, strlen(t->ca) };
		ret = gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM);
		if (ret <= 0) {
			ret = file_err(w, w->ca_line, "client_ca_file", w->client_ca_file,
				       ret < 0 ? gnutls_strerror(ret) : "no PEM certificate in it",
				       err, errlen);
			goto fail;
		}
	}
	gnutls_certificate_free_credentials(cred);
	cred = NULL;
	ret = gnutls_priority_init(&prio, t->priorities, &errpos);
	if (ret < 0) {
		snprintf(err, errlen, "GnuTLS refuses priorities %s: %s", t->priorities,
			 gnutls_strerror(ret));
		ret = -EINVAL;
		goto fail;
	}
	gnutls_priority_deinit(prio);
	t->on = true;
	return 0;
fail:
	if (cred)
		gnutls_certificate_free_credentials(cred);
	tapir_tls__clear(t);
	return ret < 0 ? ret : -EINVAL;
}

void tapir_tls__clear(struct tapir_tls *t)
{
	if (t->key)
		explicit_bzero(t->key, strlen(t->key));
	free(t->cert);
	free(t->key);
	free(t->ca);
	memset(t, 0, sizeof(*t));
}

int tapir_tls__check_client(const struct tapir_tls *t, void *session, char *why, size_t whylen)
{
	gnutls_session_t s = session;
	gnutls_typed_vdata_st purpose = { .type = GNUTLS_DT_KEY_PURPOSE_OID,
					  .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT };
	gnutls_datum_t text = { 0 };
	unsigned int status = 0, n = 0;
	int ret;

	if (!t->on || t->client_auth == TAPIR_CLIENT_AUTH_NONE)
		return 0;
	if (!s) {
		snprintf(why, whylen, "no TLS session");
		return -EACCES;
	}
	if (!gnutls_certificate_get_peers(s, &n) || !n) {
		if (t->client_auth == TAPIR_CLIENT_AUTH_IF_GIVEN)
			return 0;
		snprintf(why, whylen, "no client certificate");
		return -EACCES;
	}
	ret = gnutls_certificate_verify_peers(s, &purpose, 1, &status);
	if (ret < 0) {
		snprintf(why, whylen, "client certificate: %s", gnutls_strerror(ret));
		return -EACCES;
	}
	if (status) {
		if (!gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text,
								  0)) {
			snprintf(why, whylen, "client certificate: %s", (const char *)text.data);
			gnutls_free(text.data);
		} else {
			snprintf(why, whylen, "client certificate not trusted (status 0x%x)",
				 status);
		}
		return -EACCES;
	}
	return 0;
}
