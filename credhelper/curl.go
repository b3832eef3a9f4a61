package credhelper

import (
	"fmt"
	"strings"
)

// CurlArgs is what authagent must know about a curl command line before it hands curl a
// profile's headers: every URL the headers could reach, and for signing the method and the
// body.
type CurlArgs struct {
	URLs     []string // every URL curl will request: http(s) arguments and --url values
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

// ParseCurlArgs reads the options that matter to authagent; the rest stay curl's.
func ParseCurlArgs(args []string) (*CurlArgs, error) {
	c := &CurlArgs{}
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
		case strings.HasPrefix(a, "http://") || strings.HasPrefix(a, "https://"):
			c.URLs = append(c.URLs, a)
		case strings.HasPrefix(a, "--"):
			name, inline, hasInline := strings.Cut(a, "=")
			get := func() (string, error) {
				if hasInline {
					return inline, nil
				}
				return value(&i, name)
			}
			switch name {
			case "--url":
				v, err := get()
				if err != nil {
					return nil, err
				}
				c.URLs = append(c.URLs, v)
			case "--request":
				v, err := get()
				if err != nil {
					return nil, err
				}
				c.Method = strings.ToUpper(v)
			case "--head":
				c.Head = true
			case "--get":
				c.Get = true
			case "--location", "--location-trusted":
				c.Follow = true
			case "--data-binary":
				v, err := get()
				if err != nil {
					return nil, err
				}
				if strings.HasPrefix(v, "@") {
					c.BodyFile = v[1:]
				} else {
					c.Body = &v
				}
			case "--data", "--data-ascii", "--data-raw", "--data-urlencode", "--form", "--form-string", "--json", "--upload-file":
				c.OtherBody = name
				if !hasInline {
					i++
				}
			}
		case len(a) > 1 && a[0] == '-':
			// A group of short options, like -sSL or -XPUT.
			for j := 1; j < len(a); j++ {
				o := a[j]
				switch o {
				case 'L':
					c.Follow = true
				case 'I':
					c.Head = true
				case 'G':
					c.Get = true
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
		}
	}
	return c, nil
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
