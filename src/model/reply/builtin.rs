//! The built-in dictionary: the attributes an Access-Accept carries, from
//! the RFCs (2865, 2868, 2869, 3162, 3580, 4818, 6911) and the vendors most
//! VPN and network gear uses, in FreeRADIUS's dictionary format and with
//! FreeRADIUS's names, so `radclient -x` and a NAS's documentation agree.
//! Attributes only found in requests or accounting are left out.

pub const BUILTIN: &str = r#"
# RFC 2865
ATTRIBUTE	Service-Type		6	integer
VALUE	Service-Type	Login-User		1
VALUE	Service-Type	Framed-User		2
VALUE	Service-Type	Callback-Login-User	3
VALUE	Service-Type	Callback-Framed-User	4
VALUE	Service-Type	Outbound-User		5
VALUE	Service-Type	Administrative-User	6
VALUE	Service-Type	NAS-Prompt-User		7
VALUE	Service-Type	Authenticate-Only	8
VALUE	Service-Type	Callback-NAS-Prompt	9
VALUE	Service-Type	Call-Check		10
VALUE	Service-Type	Callback-Administrative	11
ATTRIBUTE	Framed-Protocol		7	integer
VALUE	Framed-Protocol	PPP			1
VALUE	Framed-Protocol	SLIP			2
VALUE	Framed-Protocol	GPRS-PDP-Context	7
ATTRIBUTE	Framed-IP-Address	8	ipaddr
ATTRIBUTE	Framed-IP-Netmask	9	ipaddr
ATTRIBUTE	Framed-Routing		10	integer
VALUE	Framed-Routing	None			0
VALUE	Framed-Routing	Broadcast		1
VALUE	Framed-Routing	Listen			2
VALUE	Framed-Routing	Broadcast-Listen	3
ATTRIBUTE	Filter-Id		11	string
ATTRIBUTE	Framed-MTU		12	integer
ATTRIBUTE	Framed-Compression	13	integer
VALUE	Framed-Compression	None		0
VALUE	Framed-Compression	Van-Jacobson-TCP-IP	1
ATTRIBUTE	Login-IP-Host		14	ipaddr
ATTRIBUTE	Login-Service		15	integer
VALUE	Login-Service	Telnet			0
VALUE	Login-Service	Rlogin			1
VALUE	Login-Service	TCP-Clear		2
VALUE	Login-Service	PortMaster		3
ATTRIBUTE	Login-TCP-Port		16	integer
ATTRIBUTE	Reply-Message		18	string
ATTRIBUTE	Callback-Number		19	string
ATTRIBUTE	Callback-Id		20	string
ATTRIBUTE	Framed-Route		22	string
ATTRIBUTE	Framed-IPX-Network	23	ipaddr
ATTRIBUTE	Class			25	octets
ATTRIBUTE	Session-Timeout		27	integer
ATTRIBUTE	Idle-Timeout		28	integer
ATTRIBUTE	Termination-Action	29	integer
VALUE	Termination-Action	Default		0
VALUE	Termination-Action	RADIUS-Request	1
ATTRIBUTE	Port-Limit		62	integer
# RFC 2868 (tagged)
ATTRIBUTE	Tunnel-Type		64	integer	has_tag
VALUE	Tunnel-Type	PPTP			1
VALUE	Tunnel-Type	L2F			2
VALUE	Tunnel-Type	L2TP			3
VALUE	Tunnel-Type	ATMP			4
VALUE	Tunnel-Type	VTP			5
VALUE	Tunnel-Type	AH			6
VALUE	Tunnel-Type	IP			7
VALUE	Tunnel-Type	MIN-IP			8
VALUE	Tunnel-Type	ESP			9
VALUE	Tunnel-Type	GRE			10
VALUE	Tunnel-Type	DVS			11
VALUE	Tunnel-Type	IP-in-IP		12
VALUE	Tunnel-Type	VLAN			13
ATTRIBUTE	Tunnel-Medium-Type	65	integer	has_tag
VALUE	Tunnel-Medium-Type	IP		1
VALUE	Tunnel-Medium-Type	IPv4		1
VALUE	Tunnel-Medium-Type	IPv6		2
VALUE	Tunnel-Medium-Type	NSAP		3
VALUE	Tunnel-Medium-Type	HDLC		4
VALUE	Tunnel-Medium-Type	IEEE-802	6
VALUE	Tunnel-Medium-Type	E.164		8
ATTRIBUTE	Tunnel-Client-Endpoint	66	string	has_tag
ATTRIBUTE	Tunnel-Server-Endpoint	67	string	has_tag
ATTRIBUTE	Tunnel-Private-Group-Id	81	string	has_tag
ATTRIBUTE	Tunnel-Assignment-Id	82	string	has_tag
ATTRIBUTE	Tunnel-Preference	83	integer	has_tag
ATTRIBUTE	Tunnel-Client-Auth-Id	90	string	has_tag
ATTRIBUTE	Tunnel-Server-Auth-Id	91	string	has_tag
# RFC 2869
ATTRIBUTE	Password-Retry		75	integer
ATTRIBUTE	Acct-Interim-Interval	85	integer
ATTRIBUTE	Framed-Pool		88	string
# RFC 3162, 4818, 6911
ATTRIBUTE	Framed-Interface-Id	96	ifid
ATTRIBUTE	Framed-IPv6-Prefix	97	ipv6prefix
ATTRIBUTE	Login-IPv6-Host		98	ipv6addr
ATTRIBUTE	Framed-IPv6-Route	99	string
ATTRIBUTE	Framed-IPv6-Pool	100	string
ATTRIBUTE	Delegated-IPv6-Prefix	123	ipv6prefix
ATTRIBUTE	Framed-IPv6-Address	168	ipv6addr

VENDOR	Cisco		9
BEGIN-VENDOR	Cisco
ATTRIBUTE	Cisco-AVPair		1	string
ATTRIBUTE	Cisco-Account-Info	250	string
END-VENDOR	Cisco

VENDOR	Microsoft	311
BEGIN-VENDOR	Microsoft
ATTRIBUTE	MS-MPPE-Encryption-Policy	7	integer
VALUE	MS-MPPE-Encryption-Policy	Encryption-Allowed	1
VALUE	MS-MPPE-Encryption-Policy	Encryption-Required	2
ATTRIBUTE	MS-MPPE-Encryption-Types	8	integer
ATTRIBUTE	MS-Primary-DNS-Server		28	ipaddr
ATTRIBUTE	MS-Secondary-DNS-Server		29	ipaddr
ATTRIBUTE	MS-Primary-NBNS-Server		30	ipaddr
ATTRIBUTE	MS-Secondary-NBNS-Server	31	ipaddr
END-VENDOR	Microsoft

VENDOR	Juniper		2636
BEGIN-VENDOR	Juniper
ATTRIBUTE	Juniper-Local-User-Name		1	string
ATTRIBUTE	Juniper-Allow-Commands		2	string
ATTRIBUTE	Juniper-Deny-Commands		3	string
ATTRIBUTE	Juniper-Allow-Configuration	4	string
ATTRIBUTE	Juniper-Deny-Configuration	5	string
ATTRIBUTE	Juniper-User-Permissions	10	string
END-VENDOR	Juniper

VENDOR	Fortinet	12356
BEGIN-VENDOR	Fortinet
ATTRIBUTE	Fortinet-Group-Name		1	string
ATTRIBUTE	Fortinet-Client-IP-Address	2	ipaddr
ATTRIBUTE	Fortinet-Vdom-Name		3	string
ATTRIBUTE	Fortinet-Access-Profile		6	string
END-VENDOR	Fortinet

VENDOR	Aruba		14823
BEGIN-VENDOR	Aruba
ATTRIBUTE	Aruba-User-Role			1	string
ATTRIBUTE	Aruba-User-Vlan			2	integer
ATTRIBUTE	Aruba-Priv-Admin-User		3	integer
ATTRIBUTE	Aruba-Admin-Role		4	string
ATTRIBUTE	Aruba-Named-User-Vlan		9	string
END-VENDOR	Aruba

VENDOR	Mikrotik	14988
BEGIN-VENDOR	Mikrotik
ATTRIBUTE	Mikrotik-Recv-Limit		1	integer
ATTRIBUTE	Mikrotik-Xmit-Limit		2	integer
ATTRIBUTE	Mikrotik-Group			3	string
ATTRIBUTE	Mikrotik-Rate-Limit		8	string
ATTRIBUTE	Mikrotik-Address-List		19	string
END-VENDOR	Mikrotik

VENDOR	PaloAlto	25461
BEGIN-VENDOR	PaloAlto
ATTRIBUTE	PaloAlto-Admin-Role			1	string
ATTRIBUTE	PaloAlto-Admin-Access-Domain		2	string
ATTRIBUTE	PaloAlto-Panorama-Admin-Role		3	string
ATTRIBUTE	PaloAlto-Panorama-Admin-Access-Domain	4	string
ATTRIBUTE	PaloAlto-User-Group			5	string
END-VENDOR	PaloAlto
"#;
