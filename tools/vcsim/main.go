// vmguard-vcsim: the govmomi 0.24.2 vCenter simulator (VPX model) as a program, for tests.
//
// Debian's golang-github-vmware-govmomi-dev ships the simulator library but no vcsim binary. This
// small main package serves the VPX model on a loopback address with generated credentials and a
// generated 2048-bit RSA certificate (the library's built-in one is 1024-bit, which OpenSSL 3 clients
// that verify reject), and a configurable number of VMs. Once it listens it writes a state file
// (mode 0600, renamed into place atomically) that clients read: url, host, port, username, password,
// ca_file, pid. Nothing secret is printed or passed on the command line.
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"log"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
)

type state struct {
	URL      string `json:"url"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Username string `json:"username"`
	Password string `json:"password"`
	CAFile   string `json:"ca_file"`
	PID      int    `json:"pid"`
	VMs      int    `json:"vms"`
}

func secret(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		log.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}

// certificate returns a self-signed 2048-bit RSA certificate for 127.0.0.1 and localhost and its PEM.
func certificate() (tls.Certificate, []byte) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatalf("key: %v", err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	tmpl := x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "127.0.0.1", Organization: []string{"vmguard test vCenter"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatalf("certificate: %v", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		log.Fatalf("key pair: %v", err)
	}
	return pair, certPEM
}

// writePrivate writes data to path through a private temporary file in the same directory, renamed atomically.
func writePrivate(path string, data []byte) {
	f, err := os.CreateTemp(filepath.Dir(path), ".vcsim-*")
	if err != nil {
		log.Fatalf("state: %v", err)
	}
	if _, err = f.Write(data); err == nil {
		err = f.Chmod(0o600)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		log.Fatalf("state %s: %v", path, err)
	}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback)")
	vms := flag.Int("vms", 4, "number of virtual machines (one cluster, one host, one resource pool)")
	dir := flag.String("state-dir", "", "directory for state.json and ca.pem (required, private)")
	flag.Parse()
	if *dir == "" {
		log.Fatal("-state-dir is required")
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		log.Fatalf("-listen must be a loopback address with a port, got %q", *listen)
	}
	if *vms < 0 {
		log.Fatal("-vms must be >= 0")
	}

	model := simulator.VPX()
	model.Host = 0        // no standalone host: its VMs would double the count
	model.ClusterHost = 1 // one host in the one cluster
	model.Machine = *vms  // VMs per resource pool: the cluster's pool is the only one
	model.Autostart = true
	if err := model.Create(); err != nil {
		log.Fatalf("model: %v", err)
	}
	defer model.Remove()

	pair, certPEM := certificate()
	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	user, pass := "vmguard-"+secret(4), secret(16)
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(user, pass)}
	server := model.Service.NewServer()
	defer server.Close()

	ca := filepath.Join(*dir, "ca.pem")
	writePrivate(ca, certPEM)
	port, _ := strconv.Atoi(server.URL.Port())
	u := *server.URL
	u.User = nil
	st := state{URL: u.String(), Host: server.URL.Hostname(), Port: port, Username: user, Password: pass,
		CAFile: ca, PID: os.Getpid(), VMs: *vms}
	data, _ := json.MarshalIndent(st, "", "  ")
	writePrivate(filepath.Join(*dir, "state.json"), data)
	log.Printf("vmguard-vcsim listening on %s (%d VMs)", st.URL, *vms)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	os.Remove(filepath.Join(*dir, "state.json"))
}
