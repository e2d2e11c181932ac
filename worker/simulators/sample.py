"""Plausible sample offers for the simulators (shapes from shared/pageup-hire-api.md, ASSUMED).

Deterministic for a seed. Every person is fictional.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from worker.simulators.storage import small_pdf

FIRST = ["Mia", "Noah", "Olivia", "Liam", "Ava", "Lucas", "Isla", "Leo", "Zara", "Arjun"]
LAST = ["Nguyen", "Smith", "Patel", "Williams", "Brown", "Kaur", "Jones", "Chen", "Taylor"]
TITLES = [
    ("Payroll Officer", "CC-410", "Finance"),
    ("Registered Nurse", "CC-220", "Clinical"),
    ("Software Engineer", "CC-730", "Technology"),
    ("Store Manager", "CC-115", "Retail"),
]
LOCATIONS = [("Sydney", "NSW"), ("Melbourne", "VIC"), ("Brisbane", "QLD"), ("Perth", "WA")]
# Offers of a tenant that also hires in New Zealand (the routing demo): region, not state.
NZ_LOCATIONS = [("Auckland", "AUK"), ("Wellington", "WGN"), ("Christchurch", "CAN")]
IRD_QUESTION = 21
EMPLOYMENT = ["Full Time", "Part Time", "Casual", "Fixed Term"]
TFN_QUESTION, BSB_QUESTION, ACCOUNT_QUESTION, BIRTH_QUESTION = 11, 12, 13, 14
USIS = ["SIM0001AU", "SIM0002AU", "SIM0003AU"]  # made-up fund identifiers in the USI shape
# (title, DocumentCategory, FileName) of each sample offer's documents.
SAMPLE_DOCUMENTS = [
    ("Signed employment contract", "Contract", "employment-contract-signed.pdf"),
    ("Offer letter", "Offer Letter", "offer-letter.pdf"),
]


@dataclass
class SampleOffer:
    offer_id: int
    application_id: int
    offer: dict[str, Any]
    onboarding: dict[str, Any]
    application_form: dict[str, Any]


def make_offers(
    count: int,
    *,
    seed: int = 7,
    first_id: int = 900101,
    missing_tfn: frozenset[int] = frozenset(),
    new_zealand_share: float = 0.0,
) -> list[SampleOffer]:
    """``count`` offers; the indexes in ``missing_tfn`` lack a tax file number answer. A share
    of them (``new_zealand_share``) are New Zealand hires, who answer an IRD number instead."""
    rng = random.Random(seed)
    offers = []
    for index in range(count):
        offer_id = first_id + index
        application_id = 700101 + index + (first_id - 900101)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        title, cc_code, cc_name = rng.choice(TITLES)
        new_zealand = new_zealand_share > 0 and rng.random() < new_zealand_share
        city, state = rng.choice(NZ_LOCATIONS if new_zealand else LOCATIONS)
        country = "New Zealand" if new_zealand else "Australia"
        start = date(2027, 1, 11) + timedelta(days=7 * rng.randrange(12))
        salary = 60000 + 1000 * rng.randrange(60)
        offer = {
            "PUReferenceID": offer_id,
            "Status": "Accepted",
            "StartDate": f"{start.isoformat()}T00:00:00",
            "PositionTitle": title,
            "EmploymentType": rng.choice(EMPLOYMENT),
            "HoursPerWeek": rng.choice([38, 38, 30, 20]),
            "Salary": {"Amount": salary, "Currency": "AUD", "Frequency": "Annual"},
            "CostCentre": {"Code": cc_code, "Name": cc_name},
            "Location": {"Name": city, "State": state, "Country": country},
            "Applicant": {
                "PUReferenceID": 500101 + index,
                "FirstName": first,
                "LastName": last,
                "Email": f"{first.lower()}.{last.lower()}{index}@example.org",
            },
            "Applications": {"PUReferenceID": application_id},
            "Job": {"PUReferenceID": 300101 + index % 50, "Title": title},
            "Documents": offer_documents(index + (first_id - 900101)),
        }
        answers = [
            {
                "QuestionID": BSB_QUESTION,
                "Question": "Bank BSB",
                "Answer": f"0{rng.randrange(10, 99)}-{rng.randrange(100, 999)}",
            },
            {
                "QuestionID": ACCOUNT_QUESTION,
                "Question": "Bank account number",
                "Answer": str(rng.randrange(10_000_000, 99_999_999)),
            },
            {
                "QuestionID": BIRTH_QUESTION,
                "Question": "Date of birth",
                "Answer": date(rng.randrange(1965, 2004), rng.randrange(1, 13), 14).isoformat(),
            },
        ]
        street = rng.choice(["Example Street", "Sample Road", "Placeholder Lane"])
        answers += [
            {
                "QuestionID": 15,
                "Question": "Home address",
                "Answer": f"{rng.randrange(1, 200)} {street}",
            },
            {"QuestionID": 16, "Question": "Suburb", "Answer": city},
            {"QuestionID": 17, "Question": "State", "Answer": state},
            {"QuestionID": 18, "Question": "Postcode", "Answer": f"{rng.randrange(2000, 6999)}"},
        ]
        answers += _declaration(random.Random(seed * 1000 + index))
        if new_zealand:
            ird = str(rng.randrange(10_000_000, 150_000_000))
            answers.insert(0, {"QuestionID": IRD_QUESTION, "Question": "IRD number", "Answer": ird})
        elif index not in missing_tfn:
            tfn = str(rng.randrange(100_000_000, 999_999_999))
            answers.insert(
                0, {"QuestionID": TFN_QUESTION, "Question": "Tax file number", "Answer": tfn}
            )
        onboarding = {"PUReferenceID": offer_id, "Answers": answers}
        application_form = {
            "PUReferenceID": application_id,
            "Answers": [
                {
                    "QuestionID": 1,
                    "Question": "Mobile phone",
                    "Answer": _mobile(rng.randrange(10**7, 10**8)),
                },
                {"QuestionID": 2, "Question": "Right to work in Australia", "Answer": "Yes"},
            ],
        }
        offers.append(SampleOffer(offer_id, application_id, offer, onboarding, application_form))
    return offers


def offer_documents(number: int) -> list[dict[str, Any]]:
    """The signed contract and the offer letter of the ``number``-th sample offer (the
    storage simulator generates their PDFs: a title and an id, no person)."""
    documents = []
    for offset, (title, category, file_name) in enumerate(SAMPLE_DOCUMENTS):
        document_id = 4000 + 2 * number + offset
        size = len(small_pdf(f"Placeholder {title} {document_id}"))
        documents.append({
            "PUReferenceID": document_id, "Title": title, "FileSizeKB": math.ceil(size / 1024),
            "Extension": ".pdf", "MimeType": "application/pdf", "DocumentCategory": category,
            "CreatedDate": "2026-11-02T00:39:30.582Z", "FileName": file_name,
        })  # fmt: skip
    return documents


def _declaration(rng: random.Random) -> list[dict[str, Any]]:
    """The TFN declaration answers and the chosen super fund (their own generator, so that the
    values drawn above stay as they were before these questions existed)."""
    residency = rng.choice(["Australian resident"] * 8 + ["Foreign resident", "Working holiday"])
    return [
        {"QuestionID": 19, "Question": "Residency for tax purposes", "Answer": residency},
        {"QuestionID": 20, "Question": "Claim the tax-free threshold",
         "Answer": rng.choice(["Yes", "Yes", "No"])},
        {"QuestionID": 21, "Question": "Study or training support loan (HELP, VSL, SSL, TSL)",
         "Answer": rng.choice(["No", "No", "Yes"])},
        {"QuestionID": 22, "Question": "Superannuation fund (USI)", "Answer": rng.choice(USIS)},
        {"QuestionID": 23, "Question": "Superannuation member number",
         "Answer": str(rng.randrange(10_000_000, 99_999_999))},
    ]  # fmt: skip


def _mobile(n: int) -> str:
    """An Australian mobile number that phonenumbers accepts (0412-0418 ranges)."""
    return f"041{2 + n % 7}{n % 10**6:06d}"
