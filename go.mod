module github.com/authagent/authagent

go 1.26.8

require (
	github.com/google/go-cmp v0.7.0
	github.com/pelletier/go-toml/v2 v2.4.3
	github.com/spf13/cobra v1.10.2
	github.com/zalando/go-keyring v0.2.8
	golang.org/x/sys v0.49.0
	golang.org/x/term v0.47.0
)

require (
	github.com/coreos/go-oidc/v3 v3.21.0 // indirect
	github.com/danieljoos/wincred v1.2.3 // indirect
	github.com/go-jose/go-jose/v4 v4.1.6 // indirect
	github.com/godbus/dbus/v5 v5.2.2 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/mdp/qrterminal/v3 v3.2.1 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
	github.com/zitadel/oidc/v3 v3.51.17 // indirect
	golang.org/x/oauth2 v0.37.0 // indirect
	rsc.io/qr v0.2.0 // indirect
)
