"""The demo data: the seed document's sample rows exactly as written, then a believable history.

Dated relative to `today`, so the demo always looks current: tickets in every status with
their conversations, approved and pending time on tickets and projects, projects with phases
(one awaiting a sponsor's approval), invoices draft, sent, paid and overdue, and contracts
expiring within 90 days. Everything is made in the caller's transaction; the caller commits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import sqlalchemy as sa

from portal.models import (
    Account,
    AccountStatus,
    ActorType,
    ApprovalStatus,
    CompanySize,
    Contact,
    ContractStatus,
    Customer,
    Employee,
    EmployeeRole,
    Invoice,
    InvoiceStatus,
    Payment,
    PhaseStatus,
    Project,
    ProjectPhase,
    ProjectStatus,
    ServiceContract,
    ServiceTier,
    SupportTicket,
    TicketCategory,
    TicketComment,
    TicketPriority,
    TicketStatus,
    TicketStatusChange,
    TimeEntry,
    WorkCategory,
)
from portal.services import audit, clock
from portal.services.actors import Actor
from portal.services.policy import Principal
from portal.services.errors import Conflict
from portal.services.invoicing import InvoiceRequest, generate_invoice
from portal.services.money import to_cents
from portal.services.numbering import advance_past, next_number
from portal.services.passwords import check_password_rules, hash_password
from portal.services.sla import refresh_sla

# --- The seed document's sample rows, as written (section 3, "Realistic Test Data") ----------

SEED_CUSTOMERS = [
    # company_name, industry, company_size, service_tier, account_status, primary_contact_email
    ("Denver Tech Solutions", "Technology", "medium", "professional", "active", "admin@denvertech.com"),
    ("Mountain View Dental", "Healthcare", "small", "essential", "active", "office@mvdental.com"),
    ("Boulder Manufacturing Co", "Manufacturing", "large", "enterprise", "active", "it@bouldermfg.com"),
    ("Peak Performance Fitness", "Fitness", "small", "essential", "active", "manager@peakfit.com"),
    ("Alpine Legal Group", "Legal", "medium", "professional", "active", "support@alpinelegal.com"),
]

SEED_CONTACTS = [
    # customer (1-based), first_name, last_name, email, title, is_primary_contact, can_approve_projects
    (1, "Sarah", "Johnson", "sarah.johnson@denvertech.com", "IT Director", True, True),
    (1, "Mike", "Chen", "mike.chen@denvertech.com", "Developer", False, False),
    (2, "Dr. Lisa", "Rodriguez", "dr.rodriguez@mvdental.com", "Practice Owner", True, True),
    (2, "Jennifer", "Smith", "jennifer@mvdental.com", "Office Manager", False, False),
    (3, "Robert", "Wilson", "robert.wilson@bouldermfg.com", "CTO", True, True),
]

SEED_EMPLOYEES = [
    # employee_number, first_name, last_name, email, role, internal rate, client rate, skills
    ("EMP001", "John", "Davis", "john.davis@techserv.com", "senior_technician", "75.00", "125.00",
     "Microsoft 365, Azure, Security+"),
    ("EMP002", "Amanda", "Lee", "amanda.lee@techserv.com", "technician", "55.00", "100.00",
     "Windows Server, Network+"),
    ("EMP003", "Carlos", "Martinez", "carlos.martinez@techserv.com", "project_manager", "85.00", "150.00",
     "PMP, ITIL, VMware"),
    ("EMP004", "Jessica", "Brown", "jessica.brown@techserv.com", "account_manager", "65.00", "120.00",
     "Sales, Customer Success"),
]
# Errata 8: the seed's insert omits the NOT NULL hire_date.
SEED_HIRE_DATES = {
    "EMP001": date(2019, 4, 15), "EMP002": date(2022, 8, 1),
    "EMP003": date(2018, 2, 12), "EMP004": date(2020, 10, 5),
}

SEED_CONTRACTS = [
    # contract_number, customer (1-based), service_tier, monthly_fee, included_hours, start, end
    ("CON-2024-001", 1, "professional", "1200.00", 20, date(2024, 1, 1), date(2024, 12, 31)),
    ("CON-2024-002", 2, "essential", "500.00", 8, date(2024, 2, 1), date(2025, 1, 31)),
    ("CON-2024-003", 3, "enterprise", "2500.00", 50, date(2024, 1, 15), date(2025, 1, 14)),
    ("CON-2024-004", 4, "essential", "500.00", 8, date(2024, 3, 1), date(2025, 2, 28)),
    ("CON-2024-005", 5, "professional", "1200.00", 20, date(2024, 1, 1), date(2024, 12, 31)),
]

# --- What the product adds around them -------------------------------------------------------

# The monthly invoices of the demo history are made by the invoice run, on the first of each month.
INVOICE_RUN = Principal.system("monthly invoice run")
DEPARTMENTS = {"EMP001": "Service desk", "EMP002": "Service desk", "EMP003": "Projects", "EMP004": "Sales",
               "EMP005": "Management"}

ADMIN = ("EMP005", "Priya", "Natarajan", "priya.natarajan@techserv.com", "admin", "90.00", "160.00",
         "ITIL 4, Microsoft 365 Administrator, CISSP", date(2017, 6, 1))

# One billing contact per customer; the two customers the seed gave no contact also get their
# primary contact and project sponsor in this person.
BILLING_CONTACTS = [
    (1, "Karen", "Holt", "karen.holt@denvertech.com", "Controller", False, False),
    (2, "Paul", "Nguyen", "billing@mvdental.com", "Bookkeeper", False, False),
    (3, "Denise", "Carter", "denise.carter@bouldermfg.com", "Accounts Payable Manager", False, False),
    (4, "Marcus", "Reed", "marcus.reed@peakfit.com", "Owner", True, True),
    (5, "Elena", "Petrova", "elena.petrova@alpinelegal.com", "Office Administrator", True, True),
]

# SLA bought with each tier by the renewed contracts (the seed's rows keep its 24 h / 72 h defaults).
TIER_SLA = {"essential": (8, 48), "professional": (4, 24), "enterprise": (1, 8), "breakfix": (24, 72)}
# The hours each tier's SLA counts (services/sla.py), in the customer's zone (Denver in the demo):
# enterprise around the clock, the others Monday to Friday 08:00-18:00.
BUSINESS_HOURS = {"coverage_days": [1, 2, 3, 4, 5], "coverage_start": time(8), "coverage_end": time(18)}
TIER_COVERAGE = {"essential": BUSINESS_HOURS, "professional": BUSINESS_HOURS}
# Days from today to the end of each customer's active contract: three fall in the 90-day
# renewal window (critical, high, medium), two later.
ACTIVE_CONTRACT_ENDS_IN = [24, 52, 80, 150, 240]

# (customer, category, priority, status, days ago opened, title, description, [conversation])
# Conversation lines: (who, body) with who in {"contact", "tech", "note"}.
TICKETS = [
    (1, "email", "critical", "in_progress", 0.2, "Outlook cannot connect for the sales team",
     "Since about 8:30 nobody in sales can send or receive mail in Outlook. Webmail works.",
     [("tech", "We see a stale autodiscover record after yesterday's DNS change. Fixing it now."),
      ("note", "Autodiscover CNAME points to the old Exchange host; ticket with the registrar opened.")]),
    (1, "software", "medium", "waiting_customer", 3, "Adobe Acrobat licence for new hire",
     "Please add an Acrobat Pro licence for Tom Baker, who starts Monday.",
     [("tech", "Happy to. Shall we take the licence from the unused seat of Laura Kim?"),
      ("note", "Two spare seats in the admin console; the customer has to confirm the reassignment.")]),
    (1, "network", "high", "resolved", 5, "VPN drops every 10 minutes",
     "Remote staff lose the VPN connection every few minutes since the firewall update.",
     [("tech", "The update reset the DPD timeout. Set back to 300 s; please test and let us know."),
      ("contact", "Works fine for me now, thanks!")]),
    (1, "hardware", "low", "closed", 24, "Replace toner in 2nd floor printer",
     "The HP LaserJet on the second floor shows toner low.",
     [("tech", "Toner replaced and the old cartridge recycled.")]),
    (1, "security", "high", "open", 0.05, "Suspicious sign-in alert for the CFO",
     "We got an alert about a sign-in from another country on the CFO's account.", []),
    (2, "software", "high", "assigned", 0.6, "Dentrix will not start on front-desk PC",
     "Dentrix shows a database connection error on the front-desk computer.",
     [("note", "Probably the SQL service on the server; check after the morning backup.")]),
    (2, "backup", "medium", "closed", 30, "Backup job failed on Sunday",
     "We got an email that last night's backup failed.",
     [("tech", "The USB target was full. Rotated the drive and re-ran the job: success."),
      ("contact", "Thank you!")]),
    (2, "email", "low", "resolved", 2, "Shared calendar not visible on iPhone",
     "Jennifer cannot see the appointments calendar on her iPhone.",
     [("tech", "Re-added the shared calendar to the iPhone profile; it syncs again.")]),
    (3, "network", "critical", "in_progress", 0.9, "Production line PLC network unreachable",
     "The HMI on line 2 cannot reach the PLCs. Production is down on line 2.",
     [("tech", "On site in 30 minutes. Please do not power-cycle the core switch."),
      ("contact", "Understood, we will wait for you."),
      ("note", "Spanning tree loop suspected after someone patched the spare port on SW-L2-03.")]),
    (3, "hardware", "medium", "waiting_customer", 6, "Laptop battery swelling",
     "The battery of a Latitude 5420 in engineering looks swollen.",
     [("tech", "Please stop using it and keep it unplugged. Can you send us the service tag?")]),
    (3, "security", "high", "closed", 40, "Phishing email reported by several users",
     "Several people received an invoice email with a strange link.",
     [("tech", "Message purged from all mailboxes and the sender blocked. One user clicked; "
       "password reset and sessions revoked."),
      ("note", "No signs of compromise in the sign-in logs for the user who clicked.")]),
    (3, "other", "low", "open", 1.5, "New conference room display",
     "We would like a quote for a display and a video bar for conference room B.", []),
    (4, "network", "medium", "assigned", 1.2, "Guest Wi-Fi slow in the evenings",
     "Members complain the guest Wi-Fi is very slow between 5 and 8 pm.", []),
    (4, "software", "low", "resolved", 4, "Update the membership app on reception tablet",
     "The reception tablet says the membership app needs an update.",
     [("tech", "Updated the app and enabled automatic updates on the tablet.")]),
    (4, "email", "medium", "closed", 52, "Set up info@ mailbox forwarding",
     "Please forward info@peakfit.com to Marcus and the front desk.",
     [("tech", "Forwarding configured to both addresses.")]),
    (5, "security", "critical", "waiting_customer", 2.5, "Possible ransomware on file share",
     "Some files on the S: drive have a strange extension and cannot be opened.",
     [("tech", "We isolated the file server and are restoring from last night's snapshot. "
       "Please confirm which folders are most urgent."),
      ("note", "Source traced to a paralegal's laptop; reimaged. Restoring S:\\Clients first.")]),
    (5, "email", "medium", "in_progress", 1, "Mail merge sends from the wrong address",
     "Letters sent by mail merge come from the old support@ address.",
     [("tech", "Looking into the Word mail-merge profile now.")]),
    (5, "hardware", "low", "closed", 35, "Dock not charging laptop",
     "The Thunderbolt dock at desk 14 does not charge the laptop.",
     [("tech", "Firmware update fixed the charging issue.")]),
]

# Projects: (customer, name, scope, budget, start offset, planned end offset, status, completion,
#   phases [(name, deliverables, budget, start offset, end offset, status, requires_approval, approved)])
PROJECTS = [
    (1, "Microsoft 365 tenant migration",
     "Move mail, files and Teams from the old tenant to a new Microsoft 365 tenant.",
     "18000.00", -60, 45, "active", 55,
     [("Discovery and assessment", "Inventory of mailboxes, sites and licences; migration plan.",
       "3000.00", -60, -40, "completed", False, False),
      ("Mailbox and OneDrive migration", "All mailboxes and OneDrive data in the new tenant.",
       "9000.00", -39, 10, "active", True, True),
      ("Cutover and user training", "DNS cutover, two training sessions, hypercare week.",
       "4500.00", 11, 45, "planning", True, False)]),
    (5, "Document management rollout",
     "Deploy NetDocuments for the firm with matter-centric folders and Outlook integration.",
     "8000.00", -45, 20, "active", 80,
     [("Configuration", "Cabinets, matter templates, security groups.", "3500.00", -45, -15,
       "completed", False, False),
      ("Data import and training", "Import of active matters; training for all staff.", "4000.00",
       -14, 20, "active", False, False)]),
    (3, "Plant network refresh",
     "Replace the core and access switches and the firewall at the Boulder plant.",
     "42000.00", 10, 120, "planning", 0,
     [("Site survey and design", "Survey of both halls; network design document.", "8000.00",
       10, 30, "planning", False, False),
      ("Switch and firewall replacement", "New core, 14 access switches, HA firewall pair.",
       "26000.00", 31, 120, "planning", False, False)]),
    (2, "Practice server upgrade",
     "Replace the 2016 practice server and move Dentrix to the new server.",
     "6500.00", -75, -20, "completed", 100,
     [("Server build", "New server installed and hardened.", "3000.00", -75, -50, "completed",
       False, False),
      ("Dentrix migration", "Database moved; workstations repointed.", "3500.00", -49, -20,
       "completed", False, False)]),
]

TECH_WORK = [
    "Remote troubleshooting session", "Checked event logs and applied fix", "Tested with the user",
    "Configuration change and verification", "Documented the fix in the knowledge base",
    "On-site visit", "Phone call with the customer", "Vendor support call",
]
PROJECT_WORK = [
    "Migration batch and verification", "Planning workshop with the customer", "Configuration work",
    "Status meeting and report", "User training session", "Data import and checks",
]


@dataclass
class SeedResult:
    skipped: bool = False
    created: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        if self.skipped:
            return "The database already holds the demo data; nothing changed."
        parts = ", ".join(f"{count} {name}" for name, count in self.created.items())
        return f"Demo data loaded: {parts}."


def is_seeded(session) -> bool:
    """True when the seed's sample customers are all in the database."""
    names = [row[0] for row in SEED_CUSTOMERS]
    found = session.scalar(sa.select(sa.func.count()).where(Customer.company_name.in_(names)))
    return found == len(names)


def load_demo_data(session, *, password: str, tax_rate: Decimal, today: date | None = None) -> SeedResult:
    """Load the sample rows and history unless they are there already.

    :raises Invalid: the password breaks the password rules.
    :raises Conflict: the database holds part of the sample data (it is not ours to overwrite).
    """
    check_password_rules(password)
    # Two `flask seed` at once: the second waits, then finds the data and changes nothing.
    session.execute(sa.select(sa.func.pg_advisory_xact_lock(0x7EC5E4D)))
    if is_seeded(session):
        return SeedResult(skipped=True)
    names = [row[0] for row in SEED_CUSTOMERS]
    if session.scalar(sa.select(sa.func.count()).where(Customer.company_name.in_(names))):
        raise Conflict(
            "The database holds some of the sample customers but not all of them. "
            "Seed an empty database (flask db downgrade base && flask db upgrade) instead."
        )
    return _Loader(session, password, tax_rate, today or clock.today()).load()


def demo_logins(session) -> list[tuple[str, str, str, str]]:
    """(kind, name, email, what they can do) for every login, employees first."""
    rows = []
    employees = session.scalars(sa.select(Employee).order_by(Employee.employee_number)).all()
    for e in employees:
        rows.append(("employee", e.full_name, e.email, e.role.value.replace("_", " ")))
    contacts = session.execute(
        sa.select(Contact, Customer.company_name).join(Customer).order_by(Customer.company_name, Contact.contact_id)
    ).all()
    for c, company in contacts:
        flags = [name for name, on in (
            ("primary", c.is_primary_contact), ("billing", c.is_billing_contact),
            ("sponsor", c.can_approve_projects), ("opens tickets", c.can_create_tickets)) if on]
        rows.append(("contact", c.full_name, c.email, f"{company}: {', '.join(flags) or 'follows own tickets'}"))
    return rows


class _Loader:
    def __init__(self, session, password: str, tax_rate: Decimal, today: date) -> None:
        self.s = session
        self.today = today
        self.now = datetime.combine(today, clock.now().time(), UTC)
        self.rng = random.Random(20240101)
        self.password_hash = hash_password(password)
        self.tax_rate = tax_rate
        self.principal = Principal.system("flask seed")
        self.customers: list[Customer] = []
        self.contacts: dict[int, list[Contact]] = {}
        self.employees: dict[str, Employee] = {}
        self.active_contract: dict[int, ServiceContract] = {}
        self.contracts: dict[int, list[ServiceContract]] = {}
        self.count: dict[str, int] = {}

    def load(self) -> SeedResult:
        self._seed_rows()
        self._renewals()
        self._logins()
        self._holidays()
        self._tickets()
        self._projects()
        self._this_week()
        self._invoices()
        self._departments()
        self._account_managers()
        self._unmatched_mail()
        self._audit_history()
        audit.record(self.s, self.principal.actor, "seed.loaded", changes={"rows": (None, self.count)})
        self.s.flush()
        return SeedResult(created=self.count)

    def _account_managers(self) -> None:
        """The demo's account manager looks after every demo customer (the staff customers list filters by it)."""
        for customer in self.customers:
            customer.account_manager_id = self.employees["EMP004"].employee_id
        self.s.flush()

    def _add(self, kind: str, *rows) -> None:
        self.s.add_all(rows)
        self.count[kind] = self.count.get(kind, 0) + len(rows)

    # -- the seed's rows ------------------------------------------------------------------

    def _seed_rows(self) -> None:
        for name, industry, size, tier, status, email in SEED_CUSTOMERS:
            customer = Customer(company_name=name, industry=industry, company_size=CompanySize(size),
                                service_tier=ServiceTier(tier), account_status=AccountStatus(status),
                                primary_contact_email=email)
            self.customers.append(customer)
        self._add("customers", *self.customers)
        self.s.flush()
        for n, first, last, email, title, primary, sponsor in SEED_CONTACTS + BILLING_CONTACTS:
            contact = Contact(customer_id=self.customers[n - 1].customer_id, first_name=first,
                              last_name=last, email=email, title=title, is_primary_contact=primary,
                              can_approve_projects=sponsor)
            self.contacts.setdefault(n, []).append(contact)
            self._add("contacts", contact)
        for n, first, last, email, title, primary, sponsor in BILLING_CONTACTS:
            contact = next(c for c in self.contacts[n] if c.email == email)
            contact.is_billing_contact = True
            # Finance people of the bigger customers read invoices, they do not open tickets.
            contact.can_create_tickets = primary
        for number, first, last, email, role, internal, client, skills in SEED_EMPLOYEES:
            employee = Employee(employee_number=number, first_name=first, last_name=last, email=email,
                                role=EmployeeRole(role), hourly_rate_internal=Decimal(internal),
                                hourly_rate_client=Decimal(client), skills_certifications=skills,
                                hire_date=SEED_HIRE_DATES[number])
            self.employees[number] = employee
            self._add("employees", employee)
        number, first, last, email, role, internal, client, skills, hired = ADMIN
        admin = Employee(employee_number=number, first_name=first, last_name=last, email=email,
                         role=EmployeeRole(role),
                         hourly_rate_internal=Decimal(internal), hourly_rate_client=Decimal(client),
                         skills_certifications=skills, hire_date=hired, phone="303-555-0100")
        self.employees[number] = admin
        self._add("employees", admin)
        self.employees["EMP001"].is_on_call = True
        for number, n, tier, fee, hours, start, end in SEED_CONTRACTS:
            contract = ServiceContract(contract_number=number, customer_id=self.customers[n - 1].customer_id,
                                       service_tier=ServiceTier(tier), monthly_fee=Decimal(fee), included_hours=hours,
                                       start_date=start, end_date=end, **TIER_COVERAGE.get(tier, {}))
            self.contracts.setdefault(n, []).append(contract)
            self._add("contracts", contract)
        self.s.flush()
        advance_past(self.s, "contract", len(SEED_CONTRACTS))

    def _renewals(self) -> None:
        """Each 2024 contract renewed year by year; the last renewal is active and covers today."""
        for n, contracts in sorted(self.contracts.items()):
            previous = contracts[0]
            previous.contract_status = ContractStatus.EXPIRED
            final_end = self.today + timedelta(days=ACTIVE_CONTRACT_ENDS_IN[n - 1])
            while True:
                start = previous.end_date + timedelta(days=1)
                natural_end = date(start.year + 1, start.month, start.day) - timedelta(days=1)
                is_last = natural_end >= self.today
                end = final_end if is_last else natural_end
                response, resolution = TIER_SLA[str(previous.service_tier)]
                renewal = ServiceContract(
                    contract_number=next_number(self.s, "contract", start),
                    customer_id=previous.customer_id, service_tier=previous.service_tier,
                    monthly_fee=to_cents(previous.monthly_fee * (1 + previous.price_increase_annual / 100)),
                    included_hours=previous.included_hours,
                    start_date=start, end_date=end,
                    response_time_hours=response, resolution_time_hours=resolution,
                    **TIER_COVERAGE.get(str(previous.service_tier), {}),
                    contract_status=ContractStatus.ACTIVE if is_last else ContractStatus.EXPIRED,
                    terms_conditions=(f"Renewal of {previous.contract_number}. Managed services per the "
                                      "master services agreement; additional hours billed monthly in arrears."),
                )
                self.s.add(renewal)
                self.s.flush()
                contracts.append(renewal)
                self.count["contracts"] += 1
                previous = renewal
                if is_last:
                    self.active_contract[n] = renewal
                    break

    def _logins(self) -> None:
        people = [(c.email, {"contact_id": c.contact_id}) for cs in self.contacts.values() for c in cs]
        people += [(e.email, {"employee_id": e.employee_id}) for e in self.employees.values()]
        for email, owner in people:
            self._add("logins", Account(email=email, password_hash=self.password_hash, **owner))

    # -- tickets ----------------------------------------------------------------------------

    def _contract_on(self, n: int, day: date) -> ServiceContract | None:
        return next((c for c in self.contracts[n] if c.start_date <= day <= c.end_date), None)

    def _tech_for(self, ticket_index: int, priority: str) -> Employee:
        if priority == "critical" or ticket_index % 3 == 0:
            return self.employees["EMP001"]
        return self.employees["EMP002"]

    def _submitter(self, n: int, index: int) -> Contact:
        openers = [c for c in self.contacts[n] if c.can_create_tickets]
        return openers[index % len(openers)]

    def _tickets(self) -> None:
        """The recent tickets of TICKETS and three months of closed ones, numbered in the order they came in."""
        self.tickets: list[tuple[int, SupportTicket]] = []
        specs = [
            (index, n, category, priority, status, self.now - timedelta(days=days_ago), title, description,
             talk, None)
            for index, (n, category, priority, status, days_ago, title, description, talk) in enumerate(TICKETS)
        ]
        specs += self._history_specs(first_index=len(specs))
        for spec in sorted(specs, key=lambda spec: spec[5]):
            self._make_ticket(*spec)

    def _make_ticket(self, index, n, category, priority, status, created, title, description, talk,
                     hours: Decimal | None = None) -> SupportTicket:
        status = TicketStatus(status)
        contact = self._submitter(n, index)
        tech = self._tech_for(index, priority)
        contract = self._contract_on(n, created.date())
        ticket = SupportTicket(
            ticket_number=next_number(self.s, "ticket", created.date()),
            customer_id=self.customers[n - 1].customer_id,
            contract_id=contract.contract_id if contract else None,
            contact_id=contact.contact_id, title=title, description=description,
            category=TicketCategory(category), priority=TicketPriority(priority), status=status,
            created_at=created,
        )
        order = list(TicketStatus)
        reached = order.index(status)
        step = timedelta(minutes=15 + self.rng.randint(0, 50))
        if reached >= order.index(TicketStatus.ASSIGNED):
            ticket.assigned_employee_id = tech.employee_id
            ticket.assigned_at = created + step
        if reached >= order.index(TicketStatus.IN_PROGRESS) or any(w == "tech" for w, _ in talk):
            ticket.first_response_at = created + step * 2
        if reached >= order.index(TicketStatus.RESOLVED):
            duration = min(timedelta(hours=self.rng.randint(2, 30)), (self.now - created) / 2)
            ticket.resolved_at = created + max(duration, step * 3)
            ticket.resolution_notes = talk[0][1] if talk else "Resolved."
            if self.rng.random() < 0.7:
                ticket.customer_satisfaction = self.rng.choice([4, 5, 5, 5, 3])
        if status == TicketStatus.CLOSED:
            ticket.closed_at = min(ticket.resolved_at + timedelta(days=7), self.now)
        if priority in ("high", "critical") and status != TicketStatus.OPEN:
            ticket.estimated_hours = Decimal(self.rng.choice(["2.00", "4.00", "6.00"]))
        ticket.last_activity_at = ticket.closed_at or ticket.resolved_at or ticket.first_response_at or created
        self._add("tickets", ticket)
        self.s.flush()
        self._status_history(ticket, tech, paused_before=index % 4 == 1)
        self.tickets.append((n, ticket))

        last = ticket.first_response_at or created
        for position, (who, body) in enumerate(talk):
            at = min(last + timedelta(minutes=10 + 20 * position), self.now)
            comment = TicketComment(ticket_id=ticket.ticket_id, body=body, created_at=at,
                                    is_internal=(who == "note"))
            if who == "contact":
                comment.author_contact_id = contact.contact_id
            else:
                comment.author_employee_id = tech.employee_id
            self._add("ticket comments", comment)
            last = at

        if ticket.assigned_employee_id and status != TicketStatus.ASSIGNED:
            total = hours if hours is not None else Decimal(self.rng.choice(["0.50", "0.75", "1.00", "1.50", "2.00"]))
            done = status in (TicketStatus.RESOLVED, TicketStatus.CLOSED)
            work_day = (ticket.resolved_at or self.now).date() if done else self.now.date()
            self._time_entry(tech, ticket=ticket, hours=total, day=work_day,
                             approved=done and work_day < self.today, category=WorkCategory.SUPPORT)
        return ticket

    def _status_history(self, ticket: SupportTicket, tech: Employee, paused_before: bool) -> None:
        """The status log the SLA clock is computed from, consistent with the ticket's timestamps."""
        moves = [(ticket.created_at, None, TicketStatus.OPEN)]
        status = TicketStatus(ticket.status)
        order = list(TicketStatus)
        if ticket.assigned_at:
            moves.append((ticket.assigned_at, TicketStatus.OPEN, TicketStatus.ASSIGNED))
        if order.index(status) >= order.index(TicketStatus.IN_PROGRESS):
            started = ticket.first_response_at or ticket.assigned_at
            moves.append((started, TicketStatus.ASSIGNED, TicketStatus.IN_PROGRESS))
            if paused_before:
                # An earlier wait for the customer: the resolution clock stood still meanwhile.
                moves.append((started + timedelta(minutes=20), TicketStatus.IN_PROGRESS, TicketStatus.WAITING_CUSTOMER))
                moves.append((started + timedelta(minutes=80), TicketStatus.WAITING_CUSTOMER, TicketStatus.IN_PROGRESS))
        if status == TicketStatus.WAITING_CUSTOMER:
            moves.append((min(moves[-1][0] + timedelta(minutes=30), self.now), TicketStatus.IN_PROGRESS, status))
        if ticket.resolved_at:
            moves.append((ticket.resolved_at, TicketStatus.IN_PROGRESS, TicketStatus.RESOLVED))
        if ticket.closed_at:
            moves.append((ticket.closed_at, TicketStatus.RESOLVED, TicketStatus.CLOSED))
        for at, before, after in moves:
            self.s.add(TicketStatusChange(
                ticket_id=ticket.ticket_id, from_status=before, to_status=after, changed_at=at,
                actor_type=ActorType.EMPLOYEE if before is not None else ActorType.CONTACT,
                actor_id=tech.employee_id if before is not None else ticket.contact_id))
        self.s.flush()
        refresh_sla(self.s, ticket)

    def _time_entry(self, employee: Employee, *, hours: Decimal, day: date, approved: bool,
                    category: WorkCategory, ticket: SupportTicket | None = None,
                    project: Project | None = None, billable: bool = True,
                    description: str | None = None) -> TimeEntry:
        start_hour = self.rng.choice([8, 9, 10, 13, 14])
        start = time(start_hour, self.rng.choice([0, 15, 30]))
        minutes = int(hours * 60)
        end_dt = datetime.combine(day, start) + timedelta(minutes=minutes)
        entry = TimeEntry(
            employee_id=employee.employee_id,
            customer_id=(ticket or project).customer_id,
            ticket_id=ticket.ticket_id if ticket else None,
            project_id=project.project_id if project else None,
            work_date=day,
            start_time=start if end_dt.date() == day else None,
            end_time=end_dt.time() if end_dt.date() == day else None,
            hours_worked=hours,
            description=description or self.rng.choice(PROJECT_WORK if project else TECH_WORK),
            work_category=category,
            is_billable=billable,
            billing_rate=employee.hourly_rate_client,
        )
        if approved:
            entry.approval_status = ApprovalStatus.APPROVED
            entry.approved_by_employee_id = self._approver_for(employee, project).employee_id
            entry.approved_at = datetime.combine(day + timedelta(days=1), time(17, 0), UTC)
            entry.approved_at = min(entry.approved_at, self.now)
        self._add("time entries", entry)
        return entry

    def _approver_for(self, employee: Employee, project: Project | None) -> Employee:
        """Never the author (DESIGN.md): seniors approve support time, the PM project time, the admin the rest."""
        if project is not None and employee.employee_number != "EMP003":
            return self.employees["EMP003"]
        if employee.role == EmployeeRole.TECHNICIAN:
            return self.employees["EMP001"]
        return self.employees["EMP005"]

    # -- projects -----------------------------------------------------------------------------

    def _projects(self) -> None:
        pm = self.employees["EMP003"]
        for n, name, scope, budget, start, end, status, completion, phases in PROJECTS:
            start_date = self.today + timedelta(days=start)
            project = Project(
                project_number=next_number(self.s, "project", max(start_date, self.today - timedelta(days=90))),
                customer_id=self.customers[n - 1].customer_id, project_manager_id=pm.employee_id,
                project_name=name, scope_description=scope, budget_amount=Decimal(budget),
                start_date=start_date, planned_end_date=self.today + timedelta(days=end),
                project_status=ProjectStatus(status), completion_percentage=completion,
            )
            if project.project_status == ProjectStatus.COMPLETED:
                project.actual_end_date = project.planned_end_date
            self._add("projects", project)
            self.s.flush()
            sponsor = next(c for c in self.contacts[n] if c.can_approve_projects)
            for phase_name, deliverables, phase_budget, p_start, p_end, p_status, needs_ok, approved in phases:
                phase = ProjectPhase(
                    project_id=project.project_id, phase_name=phase_name, deliverables=deliverables,
                    budget_allocation=Decimal(phase_budget), start_date=self.today + timedelta(days=p_start),
                    end_date=self.today + timedelta(days=p_end), phase_status=PhaseStatus(p_status),
                    requires_approval=needs_ok,
                )
                if approved:
                    phase.approved_at = self.now - timedelta(days=-p_start + 3)
                    phase.approval_requested_at = phase.approved_at - timedelta(days=1)
                    phase.approved_by_contact_id = sponsor.contact_id
                elif needs_ok:
                    phase.approval_requested_at = self.now - timedelta(days=2)  # the sponsor has not decided yet
                self._add("project phases", phase)
            self._project_time(project)

    def _project_time(self, project: Project) -> None:
        """Approved time up to the project's completion (at billing rates), some of it still pending."""
        if project.project_status == ProjectStatus.PLANNING:
            return
        target = project.budget_amount * Decimal(project.completion_percentage) / 100
        if project.project_status == ProjectStatus.ACTIVE and project.completion_percentage >= 80:
            target = project.budget_amount * Decimal("0.86")  # this one shows in the budget-burn report
        people = [self.employees["EMP003"], self.employees["EMP001"], self.employees["EMP002"]]
        day = project.start_date
        last_day = min(project.actual_end_date or self.today, self.today) - timedelta(days=1)
        spent = Decimal(0)
        while spent < target and day <= last_day:
            if day.weekday() < 5:
                worker = people[self.rng.randrange(3)]
                hours = Decimal(self.rng.choice(["2.00", "3.00", "4.00", "6.00"]))
                cost = hours * worker.hourly_rate_client
                if spent + cost > target:
                    hours = (((target - spent) / worker.hourly_rate_client) * 4).quantize(Decimal(1)) / 4
                    cost = hours * worker.hourly_rate_client
                    if hours <= 0:
                        break
                self._time_entry(worker, project=project, hours=hours, day=day, approved=True,
                                 category=WorkCategory.PROJECT)
                spent += cost
            day += timedelta(days=self.rng.choice([1, 1, 2]))
        if project.project_status == ProjectStatus.ACTIVE:
            # Work of the last days is still waiting for the project manager's approval.
            for worker in (self.employees["EMP001"], self.employees["EMP002"]):
                self._time_entry(worker, project=project, hours=Decimal("2.50"),
                                 day=self._last_weekday(), approved=False, category=WorkCategory.PROJECT)

    def _last_weekday(self) -> date:
        day = self.today - timedelta(days=1)
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        return day

    # -- older support work, this week's work, invoices ---------------------------------------

    def _history_specs(self, first_index: int) -> list[tuple]:
        """Closed tickets over the last three months, so every invoiced month has real work on it."""
        titles = [
            ("software", "Install updates on reception PC"), ("email", "Mailbox over quota"),
            ("hardware", "Monitor flickers"), ("network", "Printer offline after router restart"),
            ("security", "MFA reset after phone replacement"), ("backup", "Restore a deleted folder"),
            ("software", "Teams camera not detected"), ("other", "New starter account setup"),
        ]
        specs = []
        index = first_index
        for n in range(1, 6):
            for months_back in (3, 2, 1):
                for k in range(3 if n in (1, 3, 5) else 2):
                    category, title = titles[(n + k + months_back) % len(titles)]
                    first_of_month = (self.today.replace(day=1) - timedelta(days=28 * months_back)).replace(day=1)
                    created = datetime.combine(first_of_month + timedelta(days=3 + 8 * k), time(8 + n, 7 * k + 3), UTC)
                    hours = Decimal(self.rng.choice(["1.00", "2.00", "3.00", "4.00", "6.00"]))
                    if n == 2:
                        hours = Decimal("5.00")  # 10 h a month against 8 included: 2 h are billed
                    specs.append((index, n, category, self.rng.choice(["low", "medium", "high"]), "closed",
                                  created, title, f"{title}. Reported by phone.",
                                  [("tech", "Fixed remotely and checked with you that it works.")], hours))
                    index += 1
        return specs

    def _this_week(self) -> None:
        """This week's timesheets: approved and pending entries for the technicians."""
        monday = self.today - timedelta(days=self.today.weekday())
        open_tickets = [t for _, t in self.tickets if t.status in (TicketStatus.IN_PROGRESS, TicketStatus.WAITING_CUSTOMER)]
        for offset in range(min(self.today.weekday(), 4) + 1):
            day = monday + timedelta(days=offset)
            for number in ("EMP001", "EMP002"):
                ticket = open_tickets[(offset * 2 + (number == "EMP002")) % len(open_tickets)]
                self._time_entry(self.employees[number], ticket=ticket,
                                 hours=Decimal(self.rng.choice(["1.50", "2.00", "3.00"])), day=day,
                                 approved=day < self.today - timedelta(days=1), category=WorkCategory.SUPPORT)
        # An internal, non-billable hour, to show that not all time is billed.
        self._time_entry(self.employees["EMP002"], ticket=open_tickets[0], hours=Decimal("1.00"),
                         day=monday, approved=monday < self.today, category=WorkCategory.TRAINING,
                         billable=False, description="Shadowed the senior technician on the fix (training)")

    def _invoices(self) -> None:
        """Monthly invoices: three months back paid, two back paid or overdue, last month sent, this month a draft."""
        self.s.flush()
        first_this_month = self.today.replace(day=1)
        for months_back in (3, 2, 1):
            for n, customer in enumerate(self.customers, start=1):
                period_start = first_this_month
                for _ in range(months_back):
                    period_start = (period_start - timedelta(days=1)).replace(day=1)
                period_end = (_next_month(period_start) - timedelta(days=1))
                invoice_date = period_end + timedelta(days=1)
                with audit.backdated(self.s, datetime.combine(invoice_date, time(7, 0), UTC)):
                    invoice = generate_invoice(
                        self.s, INVOICE_RUN, InvoiceRequest(customer.customer_id, period_start, period_end),
                        invoice_date=invoice_date, tax_rate=self.tax_rate,
                    )
                invoice.sent_at = datetime.combine(invoice_date, time(9, 0), UTC)
                if months_back == 3 or (months_back == 2 and n in (1, 2, 3)):
                    invoice.invoice_status = InvoiceStatus.PAID
                    invoice.paid_at = datetime.combine(invoice_date + timedelta(days=18 + n), time(11, 0), UTC)
                    invoice.paid_amount = invoice.total_amount
                elif invoice.due_date < self.today and n != 4:
                    invoice.invoice_status = InvoiceStatus.OVERDUE
                    if n == 5:  # a partial payment: the rest is still owed
                        invoice.paid_amount = to_cents(invoice.total_amount / 2)
                else:
                    # Also one late invoice still "sent": the worker's scan turns it overdue within
                    # minutes of the demo starting, as it does every invoice that passes its due date.
                    invoice.invoice_status = InvoiceStatus.SENT
                self.count["invoices"] = self.count.get("invoices", 0) + 1
        # The money received, as payments (what the invoices' paid_amount sums; the accountant's export lists them).
        for invoice in self.s.scalars(sa.select(Invoice).where(Invoice.paid_amount > 0)):
            paid_on = (invoice.paid_at.date() if invoice.paid_at else
                       min(invoice.due_date + timedelta(days=3), self.today))
            self.s.add(Payment(invoice_id=invoice.invoice_id, customer_id=invoice.customer_id, payment_date=paid_on,
                               amount=invoice.paid_amount, method="bank_transfer",
                               reference=f"Transfer {invoice.invoice_number}"))
        # This month so far for the biggest customer: a draft the account manager has not sent yet.
        generate_invoice(
            self.s, INVOICE_RUN,
            InvoiceRequest(self.customers[0].customer_id, first_this_month, self.today),
            invoice_date=self.today, tax_rate=self.tax_rate,
        )
        self.count["invoices"] += 1
        self.s.flush()

    # -- the audit log of that history ---------------------------------------------------------

    def _holidays(self) -> None:
        """The US public holidays of last year, this year and next (before the tickets: their SLAs skip them)."""
        import holidays as package

        from portal.models import Holiday

        years = range(self.today.year - 1, self.today.year + 2)
        self._add("holidays", *(Holiday(day=day, name=" ".join(str(name).split())[:100])
                                for day, name in sorted(package.country_holidays("US", years=years).items())))
        self.s.flush()

    def _unmatched_mail(self) -> None:
        """One mail from a sender who is nobody's contact yet, waiting in the unmatched list."""
        from email.message import EmailMessage

        from portal.models import InboundMail

        message = EmailMessage()
        message["From"] = "Morgan Lee <morgan.lee@brightpath-dental.example>"
        message["To"] = "support@techserv.com"
        message["Subject"] = "Quote for managed IT, 12 workstations"
        message["Message-ID"] = "<demo-unmatched-1@brightpath-dental.example>"
        text = ("Hello,\n\nWe are a dental practice with 12 workstations and a small server. Could you send us "
                "a quote for managed IT support?\n\nThanks,\nMorgan Lee\nBrightPath Dental")
        message.set_content(text)
        self._add("inbound_mails", InboundMail(
            message_id=message["Message-ID"], from_address="morgan.lee@brightpath-dental.example",
            from_name="Morgan Lee", subject=message["Subject"], body=text, raw=message.as_bytes(),
            outcome="unmatched", reason="unknown sender",
            received_at=datetime.combine(self.today, time(9, 12), UTC) - timedelta(days=1)))
        self.s.flush()

    def _departments(self) -> None:
        for number, department in DEPARTMENTS.items():
            self.employees[number].department = department
        self.s.flush()

    def _audit_history(self) -> None:
        """The audit log of the history above, dated when each thing happened and by whom, as the
        services would have written it: tickets opened, assigned, moved, answered and rated; time
        logged and approved; projects, phases and their approvals; invoices sent, paid and overdue;
        the employees hired. So "who changed this, and when" has an answer for every demo row."""
        self.s.flush()
        employees = {e.employee_id: e for e in self.employees.values()}
        contacts = {c.contact_id: c for cs in self.contacts.values() for c in cs}
        staff = lambda e: Actor(ActorType.EMPLOYEE, e.employee_id, e.full_name)  # noqa: E731
        person = lambda c: Actor(ActorType.CONTACT, c.contact_id, c.full_name)  # noqa: E731
        record = lambda actor, action, subject, at, **changes: audit.record(  # noqa: E731
            self.s, actor, action, table=subject.__tablename__, row_id=sa.inspect(subject).identity[0],
            changes=changes or None, at=min(at, self.now))

        for employee in self.employees.values():
            record(Actor.system("demo data"), "employee.created", employee,
                   datetime.combine(employee.hire_date, time(9, 0), UTC),
                   employee_number=(None, employee.employee_number), first_name=(None, employee.first_name),
                   last_name=(None, employee.last_name), role=(None, employee.role),
                   hourly_rate_client=(None, employee.hourly_rate_client))

        closer = Actor.system("auto-close after 7 days")
        for _, ticket in self.tickets:
            record(person(contacts[ticket.contact_id]), "ticket.created", ticket, ticket.created_at,
                   ticket_number=(None, ticket.ticket_number), priority=(None, ticket.priority))
            moves = self.s.scalars(sa.select(TicketStatusChange).where(
                TicketStatusChange.ticket_id == ticket.ticket_id, TicketStatusChange.from_status.is_not(None))
                .order_by(TicketStatusChange.changed_at, TicketStatusChange.change_id)).all()
            for move in moves:
                tech = employees.get(move.actor_id) if move.actor_type == ActorType.EMPLOYEE else None
                actor = staff(tech) if tech else closer
                if move.to_status == TicketStatus.ASSIGNED:
                    record(actor, "ticket.assigned", ticket, move.changed_at,
                           assigned_employee_id=(None, ticket.assigned_employee_id))
                elif move.to_status == TicketStatus.CLOSED:
                    record(closer, "ticket.status_changed", ticket, move.changed_at, status=(move.from_status, move.to_status))
                else:
                    record(actor, "ticket.status_changed", ticket, move.changed_at, status=(move.from_status, move.to_status))
            for comment in self.s.scalars(sa.select(TicketComment).where(TicketComment.ticket_id == ticket.ticket_id)
                                          .order_by(TicketComment.created_at)):
                author = (staff(employees[comment.author_employee_id]) if comment.author_employee_id
                          else person(contacts[comment.author_contact_id]))
                record(author, "ticket.note_added" if comment.is_internal else "ticket.replied", ticket,
                       comment.created_at)
            if ticket.customer_satisfaction:
                record(person(contacts[ticket.contact_id]), "ticket.rated", ticket,
                       ticket.resolved_at + timedelta(hours=3), customer_satisfaction=(None, ticket.customer_satisfaction))

        for entry in self.s.scalars(sa.select(TimeEntry).order_by(TimeEntry.work_date, TimeEntry.entry_id)):
            logged = datetime.combine(entry.work_date, time(17, 30), UTC)
            record(staff(employees[entry.employee_id]), "time_entry.logged", entry, logged,
                   hours_worked=(None, entry.hours_worked))
            if entry.approval_status == ApprovalStatus.APPROVED:
                record(staff(employees[entry.approved_by_employee_id]), "time_entry.approved", entry,
                       max(entry.approved_at, logged), approval_status=(ApprovalStatus.PENDING, ApprovalStatus.APPROVED))

        for project in self.s.scalars(sa.select(Project).order_by(Project.project_id)):
            manager = staff(employees[project.project_manager_id])
            planned = datetime.combine(min(project.start_date, self.today) - timedelta(days=14), time(10, 0), UTC)
            record(manager, "project.created", project, planned, budget_amount=(None, project.budget_amount))
            for phase in self.s.scalars(sa.select(ProjectPhase).where(ProjectPhase.project_id == project.project_id)
                                        .order_by(ProjectPhase.phase_id)):
                record(manager, "phase.added", phase, planned + timedelta(minutes=10),
                       budget_allocation=(None, phase.budget_allocation))
                if phase.approval_requested_at:
                    record(manager, "phase.approval_requested", phase, phase.approval_requested_at)
                if phase.approved_at:
                    record(person(contacts[phase.approved_by_contact_id]), "phase.approved", phase, phase.approved_at,
                           approved_by_contact_id=(None, phase.approved_by_contact_id))

        billing = staff(self.employees["EMP004"])
        overdue_scan = Actor.system("scheduler")
        for invoice in self.s.scalars(sa.select(Invoice).where(Invoice.sent_at.is_not(None))
                                      .order_by(Invoice.invoice_date, Invoice.invoice_id)):
            record(billing, "invoice.sent", invoice, invoice.sent_at,
                   invoice_status=(InvoiceStatus.DRAFT, InvoiceStatus.SENT))
            if invoice.invoice_status == InvoiceStatus.OVERDUE:
                record(overdue_scan, "invoice.overdue", invoice,
                       datetime.combine(invoice.due_date + timedelta(days=1), time(6, 0), UTC),
                       invoice_status=(InvoiceStatus.SENT, InvoiceStatus.OVERDUE))
            if invoice.paid_amount:
                paid_at = invoice.paid_at or datetime.combine(invoice.due_date + timedelta(days=3), time(11, 0), UTC)
                if invoice.invoice_status == InvoiceStatus.PAID:
                    record(billing, "invoice.paid", invoice, paid_at, paid_amount=(None, invoice.paid_amount),
                           invoice_status=(InvoiceStatus.SENT, InvoiceStatus.PAID))
                else:
                    record(billing, "invoice.payment_recorded", invoice, paid_at,
                           paid_amount=(None, invoice.paid_amount))
        self.s.flush()


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)
