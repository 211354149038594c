package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/relayd/relayd/pkg/tlsconf"
)

// certsCmd: relayd certs --out DIR --host H[,H…] NAME… — a lab CA (made
// once in DIR) and a certificate per node, for the TLS content port and
// mutual TLS between relays.
func certsCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("relayd certs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory for ca.pem/ca.key (made if missing) and NAME.pem/NAME.key")
	hosts := fs.String("host", "", "comma-separated IP addresses and DNS names the certificates are valid for")
	valid := fs.Duration("valid", 365*24*time.Hour, "how long the node certificates are valid")
	if err := parseFlags(fs, args, stderr, "relayd certs --out DIR --host H[,H…] NAME…"); err != nil {
		return err
	}
	hs := splitComma(*hosts)
	if *out == "" || len(hs) == 0 || fs.NArg() == 0 {
		return usageError{fmt.Errorf("usage: relayd certs --out DIR --host H[,H…] NAME…")}
	}
	for _, name := range fs.Args() {
		if name == "" || strings.ContainsAny(name, `/\`) || name == strings.TrimSuffix(tlsconf.CAFile, ".pem") {
			return usageError{fmt.Errorf("certs: %q is not a usable node name", name)}
		}
		if err := tlsconf.Issue(*out, name, hs, *valid); err != nil {
			return fmt.Errorf("certs: %s: %w", name, err)
		}
		fmt.Fprintf(stdout, "wrote %s and %s (--tls-cert, --tls-key)\n", filepath.Join(*out, name+".pem"), filepath.Join(*out, name+".key"))
	}
	fmt.Fprintf(stdout, "CA: %s (--upstream-ca on children, --peer-ca on parents); keep %s off the relays\n",
		filepath.Join(*out, tlsconf.CAFile), filepath.Join(*out, tlsconf.CAKeyFile))
	return nil
}
