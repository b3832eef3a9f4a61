package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/authagent/authagent/credhelper"
	"github.com/authagent/authagent/ipc"
)

func newCurlCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "curl [NAME] -- CURL-ARGS…",
		Short: "Run curl with a profile's headers, handed over on a pipe (never in argv or env)",
		Long: `Run curl with the profile's current headers. The headers reach curl as a config file on an
inherited pipe (-K /dev/fd/3), so the token never appears in a command line, the
environment or a file. Without NAME the profile is the one whose hosts match the URL.
With a signing profile (apikey sigv4) the agent signs the request instead; send a body with
--data-binary, which curl sends unchanged.`,
		Example: `  authagent curl -- https://api.example.com/v1/things
  authagent curl work -- -X POST -d @body.json https://api.example.com/v1/things`,
		Args: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			if dash < 0 || dash > 1 || len(args) == dash {
				return usageError{"usage: authagent curl [NAME] -- CURL-ARGS…"}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			curlArgs := args[dash:]
			ca, err := credhelper.ParseCurlArgs(curlArgs)
			if err != nil {
				return usageError{err.Error()}
			}
			if len(ca.URLs) == 0 {
				return usageError{"no http(s):// URL among the curl arguments; authagent needs it to check where the token goes"}
			}
			if ca.Follow {
				return usageError{"authagent curl does not follow redirects (-L): the headers would go wherever the server redirects"}
			}
			ctx := cmd.Context()
			target := ca.URLs[0]
			var p *ipc.Profile
			if dash == 1 {
				p, err = c.client.Profile(ctx, args[0])
			} else {
				p, err = c.client.ProfileForURL(ctx, target)
			}
			if err != nil {
				return err
			}
			var headers map[string]string
			if p.Can("sign") {
				req, err := signRequestFor(ca)
				if err != nil {
					return err
				}
				if headers, err = c.client.Sign(ctx, p.Name, req); err != nil {
					return err
				}
			} else {
				// Every URL curl will request gets the headers: each must be one the
				// profile may send its token to.
				var cred *ipc.Credential
				for _, u := range ca.URLs {
					if cred, err = c.client.Credential(ctx, p.Name, ipc.ForURL(u)); err != nil {
						return err
					}
				}
				headers = cred.Headers
			}
			conf, err := credhelper.CurlConfig(headers)
			if err != nil {
				return err
			}
			return runCurl(conf, curlArgs)
		},
	}
}

// signRequestFor is the request a signing profile signs for a curl command line: its
// method and the SHA-256 of the body --data-binary sends.
func signRequestFor(ca *credhelper.CurlArgs) (ipc.SignRequest, error) {
	method, err := ca.SignedMethod()
	if err != nil {
		return ipc.SignRequest{}, usageError{err.Error()}
	}
	var body []byte
	switch {
	case ca.BodyFile != "":
		if body, err = os.ReadFile(ca.BodyFile); err != nil {
			return ipc.SignRequest{}, err
		}
	case ca.Body != nil:
		body = []byte(*ca.Body)
	}
	sum := sha256.Sum256(body)
	return ipc.SignRequest{Method: method, URL: ca.URLs[0], BodySHA256: hex.EncodeToString(sum[:])}, nil
}

// runCurl runs curl with conf readable on fd 3 and passes its exit status through.
func runCurl(conf string, args []string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command("curl", append([]string{"-K", "/dev/fd/3"}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{r}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("start curl: %w", err)
	}
	r.Close()
	// Written while curl reads: a config larger than the pipe's buffer must not block.
	go func() {
		io.WriteString(w, conf)
		w.Close()
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return exitStatus{128 + int(ws.Signal())} // as a shell reports it
		}
		return exitStatus{ee.ExitCode()}
	}
	return err
}

func newKubeCredentialCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "kube-credential NAME",
		Short: "Print a kubectl ExecCredential (client.authentication.k8s.io/v1) for a profile",
		Long: `Print the profile's token as a kubectl exec credential. In a kubeconfig user:

    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: authagent
      args: [kube-credential, work]
      interactiveMode: IfAvailable

The token is the profile's access token, or its OpenID Connect ID token when the profile
sets kube_token = "id_token" (for clusters that use Kubernetes' OIDC authenticator).
When kubectl says the session is interactive and the profile needs a login, the login
runs with its prompts on stderr; otherwise the command fails with a message.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			k := &credhelper.Kube{Agent: c.client, Login: func(ctx context.Context, name string) error {
				return runLogin(ctx, c.client, name, loginOpts{open: true}, os.Stderr)
			}}
			return k.Do(cmd.Context(), credhelper.KubeInput{Profile: args[0], ExecInfo: os.Getenv("KUBERNETES_EXEC_INFO"), Out: os.Stdout})
		},
	}
}

func newDockerCredentialCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:    "docker-credential get|store|erase|list",
		Short:  "Docker credential helper (docker runs docker-credential-authagent)",
		Hidden: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := exactArgs(1, "get|store|erase|list")(cmd, args); err != nil {
				return err
			}
			if !slices.Contains([]string{"get", "store", "erase", "list"}, args[0]) {
				return usageError{fmt.Sprintf("unknown operation %q: want get, store, erase or list", args[0])}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			d := &credhelper.Docker{Agent: c.client}
			return d.Do(cmd.Context(), credhelper.DockerInput{Op: args[0], In: os.Stdin, Out: os.Stdout})
		},
	}
}

func newBazelCredentialCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "credential-helper get",
		Short: "Bazel/EngFlow credential helper: {\"uri\":…} in, {\"headers\":…} out",
		Long: `A credential helper for Bazel (--credential_helper=authagent-bazel, a script running
"authagent credential-helper get") following the EngFlow credential helper spec. A URI no
profile covers gets empty headers.`,
		Args: exactArgs(1, "get"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "get" {
				return usageError{"only `get` is defined by the credential helper spec"}
			}
			b := &credhelper.Bazel{Agent: c.client}
			return b.Do(cmd.Context(), credhelper.BazelInput{In: os.Stdin, Out: os.Stdout})
		},
	}
}
