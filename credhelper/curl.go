package credhelper

import (
	"fmt"
	"strings"
)

// CurlArgs is what authagent must know about a curl command line before it hands curl a
// profile's headers: every URL the headers could reach, and for signing the method and the
// body.
type CurlArgs struct {
	URLs     []string // every URL curl will request: its arguments and --url values, scheme lowercased, http:// when missing
	Method   string   // "" when curl picks it (GET, or POST with a body)
	Head     bool     // -I/--head
	Get      bool     // -G/--get: data goes into the query
	Follow   bool     // -L/--location*: curl would follow redirects
	BodyFile string   // --data-binary @FILE
	Body     *string  // --data-binary VALUE
	// OtherBody names a body option whose bytes curl changes or builds (-d, -F, --json,
	// -T …), so a signature over the body cannot be computed beforehand.
	OtherBody string
}

// shortWithValue are curl's short options that take a value.
const shortWithValue = "AbcCdDeEFHKmorTuUwxXyYzQP"

// longWithValue are curl's long options that take a value (curl 7.88, Debian 12, and
// later additions). A long option not listed is taken to stand alone; should it in fact take
// a value, that value is read as a URL and checked like one, so a mistake here refuses a
// command line rather than letting a token through.
var longWithValue = map[string]bool{
	"--abstract-unix-socket": true, "--alt-svc": true, "--aws-sigv4": true, "--cacert": true,
	"--capath": true, "--cert": true, "--cert-type": true, "--ciphers": true, "--config": true,
	"--connect-timeout": true, "--connect-to": true, "--continue-at": true, "--cookie": true,
	"--cookie-jar": true, "--create-file-mode": true, "--crlfile": true, "--curves": true,
	"--data": true, "--data-ascii": true, "--data-binary": true, "--data-raw": true,
	"--data-urlencode": true, "--delegation": true, "--dns-interface": true,
	"--dns-ipv4-addr": true, "--dns-ipv6-addr": true, "--dns-servers": true, "--doh-url": true,
	"--dump-header": true, "--egd-file": true, "--engine": true, "--etag-compare": true,
	"--etag-save": true, "--expect100-timeout": true, "--form": true, "--form-string": true,
	"--ftp-account": true, "--ftp-alternative-to-user": true, "--ftp-method": true,
	"--ftp-port": true, "--ftp-ssl-ccc-mode": true, "--happy-eyeballs-timeout-ms": true,
	"--haproxy-clientip": true, "--header": true, "--hostpubmd5": true,
	"--hostpubsha256": true, "--hsts": true, "--interface": true, "--ip-tos": true,
	"--ipfs-gateway": true, "--json": true, "--keepalive-time": true, "--key": true,
	"--key-type": true, "--krb": true, "--libcurl": true, "--limit-rate": true,
	"--local-port": true, "--login-options": true, "--mail-auth": true, "--mail-from": true,
	"--mail-rcpt": true, "--max-filesize": true, "--max-redirs": true, "--max-time": true,
	"--netrc-file": true, "--noproxy": true, "--oauth2-bearer": true, "--output": true,
	"--output-dir": true, "--parallel-max": true, "--pass": true, "--pinnedpubkey": true,
	"--preproxy": true, "--proto": true, "--proto-default": true, "--proto-redir": true,
	"--proxy": true, "--proxy-cacert": true, "--proxy-capath": true, "--proxy-cert": true,
	"--proxy-cert-type": true, "--proxy-ciphers": true, "--proxy-crlfile": true,
	"--proxy-header": true, "--proxy-key": true, "--proxy-key-type": true, "--proxy-pass": true,
	"--proxy-pinnedpubkey": true, "--proxy-service-name": true, "--proxy-tls13-ciphers": true,
	"--proxy-tlsauthtype": true, "--proxy-tlspassword": true, "--proxy-tlsuser": true,
	"--proxy-user": true, "--proxy1.0": true, "--pubkey": true, "--quote": true,
	"--random-file": true, "--range": true, "--rate": true, "--referer": true,
	"--request": true, "--request-target": true, "--resolve": true, "--retry": true,
	"--retry-delay": true, "--retry-max-time": true, "--sasl-authzid": true,
	"--service-name": true, "--socks4": true, "--socks4a": true, "--socks5": true,
	"--socks5-gssapi-service": true, "--socks5-hostname": true, "--speed-limit": true,
	"--speed-time": true, "--stderr": true, "--telnet-option": true, "--tftp-blksize": true,
	"--time-cond": true, "--tls-max": true, "--tls13-ciphers": true, "--tlsauthtype": true,
	"--tlspassword": true, "--tlsuser": true, "--trace": true, "--trace-ascii": true,
	"--trace-config": true, "--unix-socket": true, "--upload-file": true, "--url": true,
	"--url-query": true, "--user": true, "--user-agent": true, "--variable": true,
	"--write-out": true,
}

// refused are curl options that send requests somewhere the URLs on the command line do
// not say: more options from a file, a second set of requests, or a host's connection
// taken elsewhere. authagent cannot check where the headers would go.
var refused = map[string]string{
	"--config":               "-K/--config reads more options, and URLs, from a file",
	"-K":                     "-K/--config reads more options, and URLs, from a file",
	"--next":                 "-:/--next starts requests authagent did not check",
	"-:":                     "-:/--next starts requests authagent did not check",
	"--connect-to":           "--connect-to sends a host's requests to another host",
	"--resolve":              "--resolve sends a host's requests to another address",
	"--unix-socket":          "--unix-socket sends the requests to a socket instead of the URL's host",
	"--abstract-unix-socket": "--abstract-unix-socket sends the requests to a socket instead of the URL's host",
	"--request-target":       "--request-target sends a path the URL does not show",
}

// ParseCurlArgs reads the options that matter to authagent; the rest stay curl's. Every
// argument that is not an option or an option's value is a URL, as curl reads it: a
// missing scheme counts as http://, which the hosts policy refuses but for loopback hosts.
// Options that would send the headers somewhere the URLs do not say (refused) are an error,
// and so is a URL with curl's globbing characters unless -g/--globoff is given.
func ParseCurlArgs(args []string) (*CurlArgs, error) {
	c := &CurlArgs{}
	globoff := false
	var urls []string
	value := func(i *int, opt string) (string, error) {
		if *i+1 >= len(args) {
			return "", fmt.Errorf("curl option %s needs a value", opt)
		}
		*i++
		return args[*i], nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			urls = append(urls, args[i+1:]...) // curl reads what follows as URLs too
			i = len(args)
		case strings.HasPrefix(a, "--"):
			name, inline, hasInline := strings.Cut(a, "=")
			if why, ok := refused[name]; ok {
				return nil, fmt.Errorf("authagent curl refuses %s, so it cannot check where the headers go", why)
			}
			get := func() (string, error) {
				if hasInline {
					return inline, nil
				}
				return value(&i, name)
			}
			if !longWithValue[name] {
				switch name {
				case "--head":
					c.Head = true
				case "--get":
					c.Get = true
				case "--location", "--location-trusted":
					c.Follow = true
				case "--globoff":
					globoff = true
				}
				continue
			}
			v, err := get()
			if err != nil {
				return nil, err
			}
			switch name {
			case "--url":
				urls = append(urls, v)
			case "--request":
				c.Method = strings.ToUpper(v)
			case "--data-binary":
				if strings.HasPrefix(v, "@") {
					c.BodyFile = v[1:]
				} else {
					c.Body = &v
				}
			case "--data", "--data-ascii", "--data-raw", "--data-urlencode", "--form", "--form-string", "--json", "--upload-file":
				c.OtherBody = name
			}
		case len(a) > 1 && a[0] == '-':
			// A group of short options, like -sSL or -XPUT.
			for j := 1; j < len(a); j++ {
				o := a[j]
				if why, ok := refused["-"+string(o)]; ok {
					return nil, fmt.Errorf("authagent curl refuses %s, so it cannot check where the headers go", why)
				}
				switch o {
				case 'L':
					c.Follow = true
				case 'I':
					c.Head = true
				case 'G':
					c.Get = true
				case 'g':
					globoff = true
				}
				if !strings.ContainsRune(shortWithValue, rune(o)) {
					continue
				}
				v := a[j+1:]
				if v == "" {
					var err error
					if v, err = value(&i, "-"+string(o)); err != nil {
						return nil, err
					}
				}
				switch o {
				case 'X':
					c.Method = strings.ToUpper(v)
				case 'd', 'F', 'T':
					c.OtherBody = "-" + string(o)
				}
				break
			}
		default:
			urls = append(urls, a)
		}
	}
	for _, u := range urls {
		if !globoff && strings.ContainsAny(u, "{}[]") {
			return nil, fmt.Errorf("curl would expand %q into several URLs; add -g (--globoff) or give each URL on its own", u)
		}
		c.URLs = append(c.URLs, curlURL(u))
	}
	return c, nil
}

// curlURL is the URL curl requests for an argument: with its scheme in lower case, and
// http:// when it has none (curl's default).
func curlURL(arg string) string {
	scheme, rest, ok := strings.Cut(arg, "://")
	if !ok {
		return "http://" + arg
	}
	return strings.ToLower(scheme) + "://" + rest
}

// SignedMethod is the method curl will send, for a signature, or an error when the
// command line builds a body curl alters.
func (c *CurlArgs) SignedMethod() (string, error) {
	switch {
	case c.OtherBody != "":
		return "", fmt.Errorf("with a signing profile, send a body with --data-binary (curl changes what %s sends, and the signature covers the body)", c.OtherBody)
	case c.Get:
		return "", fmt.Errorf("with a signing profile, put the query in the URL instead of -G/--get")
	case len(c.URLs) != 1:
		return "", fmt.Errorf("with a signing profile, give curl exactly one URL: each request needs its own signature")
	case c.Method != "":
		return c.Method, nil
	case c.Head:
		return "HEAD", nil
	case c.BodyFile != "" || c.Body != nil:
		return "POST", nil
	}
	return "GET", nil
}
