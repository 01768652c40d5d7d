package gcpkmsemu

// CertificateNames are the DNS names and addresses in the emulator's leaf
// certificate: the Cloud KMS and OAuth hosts the Google clients use, plus
// loopback (a client given option.WithEndpoint("127.0.0.1:PORT") checks
// the IP address).
var CertificateNames = []string{
	"cloudkms.googleapis.com", "oauth2.googleapis.com", "iamcredentials.googleapis.com",
	"sts.googleapis.com", "localhost", "127.0.0.1", "::1",
}
